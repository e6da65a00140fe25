"""An agent turn's steps, tools and sub-agents, exactly, from frames in protocol §10.4's order."""

from __future__ import annotations

from typing import Any

from loadtest.core.measurement import merge
from loadtest.core.recorder import Recorder
from loadtest.core.steps import ChildRecorder, Subagents
from loadtest.core.tracker import TurnTracker
from tests.unit.agent_events import agent_turn, call, commit, numbered, result, text
from tests.unit.events import MS, episode_part, message, preview_reset, status


def latency_ms(recorder: Recorder, name: str) -> tuple[int, float, float, float]:
    """A latency's count, min, max and sum in ms (each exact, unlike HDR's buckets)."""
    hist = recorder.latency[name]
    return hist.count, hist.min / 1000, hist.max / 1000, hist.total / 1000


def test_steps_tools_and_their_times_are_exact() -> None:
    recorder = Recorder()
    tracker = TurnTracker(recorder)
    turn = agent_turn(tracker)
    assert turn.outcome == "completed" and not turn.integrity_errors
    log = turn.agent
    assert log.steps == 3
    assert log.tool_calls == {"execute": 1, "read_file": 1, "spawn_agent": 2}
    assert log.tool_errors == 1
    # Step 2: the tool commit at 520 -> its first part at 600 (the attempt later thrown away
    # counts, as for TTFT); step 3: the last spawn_agent result's commit 1950 -> 2000.
    assert [ns // MS for ns in log.step_ttfts] == [80, 50]
    assert [(name, ns // MS) for name, ns in log.tool_times] == [
        ("execute", 250),
        ("read_file", 360),
        ("spawn_agent", 200),
        ("spawn_agent", 240),
    ]
    assert [(kind, label, a // MS, b // MS) for kind, label, a, b in log.timeline] == [
        ("wait", "step 1", 0, 100),
        ("stream", "step 1", 100, 170),
        ("tool", "execute", 150, 400),
        ("tool", "read_file", 160, 520),
        ("wait", "step 2, 1 retry", 520, 600),
        ("stream", "step 2, 1 retry", 600, 1720),
        ("tool", "spawn_agent", 1700, 1900),
        ("tool", "spawn_agent", 1710, 1950),
        ("wait", "step 3", 1950, 2000),
        ("stream", "step 3", 2000, 2100),
    ]
    # The recorder's figures.
    counts = recorder.counts
    assert (counts["tool_calls"], counts["tool_errors"]) == (4, 1)
    assert (counts["tool_calls:execute"], counts["tool_calls:spawn_agent"]) == (1, 2)
    assert latency_ms(recorder, "step_time_to_first_output") == (2, 50, 80, 130)
    assert latency_ms(recorder, "tool_time") == (4, 200, 360, 1050)
    assert latency_ms(recorder, "tool_time:spawn_agent") == (2, 200, 240, 440)
    assert latency_ms(recorder, "tool_time:read_file") == (1, 360, 360, 360)
    assert recorder.dist["steps_per_turn"].max == 3
    assert recorder.dist["tool_calls_per_turn"].max == 4
    assert latency_ms(recorder, "time_to_first_output") == (1, 100, 100, 100)
    assert recorder.counts["preview_resets"] == 7 and recorder.counts["parts_discarded"] == 1
    # Its timeline is kept, in µs from t0, for the report's typical turn.
    ((duration, steps, segments),) = recorder.timelines.values()
    assert (duration, steps, len(segments)) == (2_100_000, 3, 10)
    assert segments[4] == ["wait", "step 2, 1 retry", 520_000, 600_000]


def test_a_plain_answer_is_one_step_with_no_tools() -> None:
    recorder = Recorder()
    tracker = TurnTracker(recorder)
    tracker.start(0)
    tracker.feed([message(1, "user"), status("running")], 5 * MS)
    tracker.feed([episode_part("hi", 2, 1, 1)], 100 * MS)
    (turn,) = tracker.feed([commit(2, "assistant", text("hi")), status("waiting")], 300 * MS)
    assert (turn.agent.steps, turn.agent.tool_calls, turn.agent.step_ttfts) == (1, {}, [])
    assert recorder.latency["step_time_to_first_output"].count == 0
    assert recorder.latency["tool_time"].count == 0
    assert recorder.dist["steps_per_turn"].max == 1 and recorder.counts["tool_calls"] == 0


def test_steps_committed_while_disconnected_count_but_are_not_timed() -> None:
    """A reconnect's snapshot brings step 1's commit: a step, but no live time to take the
    next step's time to first output from; the tool call's part was missed: no tool time."""
    recorder = Recorder()
    tracker = TurnTracker(recorder)
    tracker.start(0)
    tracker.feed([message(1, "user"), status("running")], 5 * MS)
    tracker.connected()
    tracker.feed(
        [commit(2, "assistant", text(""), call("call_a", "execute")), status("running")],
        300 * MS,
    )
    tracker.feed([numbered(result("call_a", "execute"), "tool", 3, 1, 1)], 400 * MS)
    tracker.feed([commit(3, "tool", result("call_a", "execute")), preview_reset()], 410 * MS)
    tracker.feed([episode_part("done", 4, 1, 1)], 460 * MS)
    (turn,) = tracker.feed([commit(4, "assistant", text("done")), status("waiting")], 500 * MS)
    assert turn.agent.steps == 2 and turn.agent.tool_calls == {"execute": 1}
    # The tool commit was live: step 2 is timed from it; the tool itself is not.
    assert [ns // MS for ns in turn.agent.step_ttfts] == [50]
    assert turn.agent.tool_times == []


def test_a_new_turn_starts_clean_after_one_that_failed_mid_tool() -> None:
    recorder = Recorder()
    tracker = TurnTracker(recorder)
    tracker.start(0)
    tracker.feed([message(1, "user"), status("running")], 5 * MS)
    tracker.feed([numbered(call("call_a", "execute"), "assistant", 2, 1, 1)], 100 * MS)
    tracker.feed([commit(2, "assistant", call("call_a", "execute")), preview_reset()], 110 * MS)
    (failed,) = tracker.feed([status("error")], 200 * MS)
    assert failed.outcome == "failed"
    # A failed turn's tool calls count; its step distribution does not.
    assert recorder.counts["tool_calls"] == 1 and recorder.dist["steps_per_turn"].count == 0
    tracker.start(1000 * MS)
    tracker.feed([message(3, "user"), status("running")], 1005 * MS)
    # A result for the old call is not this turn's tool.
    tracker.feed([numbered(result("call_a", "execute"), "tool", 3, 1, 1)], 1050 * MS)
    tracker.feed([episode_part("x", 3, 1, 2)], 1100 * MS)
    (turn,) = tracker.feed([commit(4, "assistant", text("x")), status("waiting")], 1200 * MS)
    assert turn.agent.tool_times == [] and turn.agent.step_ttfts == []
    assert turn.agent.timeline[0][2:] == (1000 * MS, 1100 * MS)


def test_malformed_tool_parts_are_skipped_not_fatal() -> None:
    recorder = Recorder()
    tracker = TurnTracker(recorder)
    tracker.start(0)
    tracker.feed([message(1, "user"), status("running")], 5 * MS)
    odd: list[dict[str, Any]] = [
        numbered({"type": "tool-call", "tool_call_id": 7, "args": {}}, "assistant", 2, 1, 1),
        numbered({"type": "tool-call", "tool_call_id": "x", "args": {}}, "assistant", 2, 1, 2),
        numbered({"type": "tool-result", "tool_call_id": "x", "result": 3}, "tool", 2, 1, 3),
    ]
    tracker.feed(odd, 100 * MS)
    tracker.feed(
        [{"type": "message_part", "chat_id": "c", "message_part": {"part": "nonsense"}}],
        110 * MS,
    )
    nameless = {"type": "tool-call", "tool_name": 5}
    (turn,) = tracker.feed([commit(2, "assistant", nameless), status("waiting")], 200 * MS)
    # The call without a string id is not timed; the one without a name is "unknown".
    assert turn.agent.tool_times == [("unknown", 0)]
    assert turn.agent.steps == 1 and turn.agent.tool_calls == {"unknown": 1}
    assert turn.outcome == "completed"


def test_a_streamed_result_piece_does_not_end_the_tool() -> None:
    """Guess (see protocol/agents.py): a ``result_delta`` piece is the tool still running."""
    recorder = Recorder()
    tracker = TurnTracker(recorder)
    tracker.start(0)
    tracker.feed([message(1, "user"), status("running")], 5 * MS)
    tracker.feed([numbered(call("call_a", "execute"), "assistant", 2, 1, 1)], 100 * MS)
    tracker.feed([commit(2, "assistant", call("call_a", "execute")), preview_reset()], 110 * MS)
    piece = {"type": "tool-result", "tool_call_id": "call_a", "result_delta": "part"}
    tracker.feed([numbered(piece, "tool", 3, 1, 1)], 200 * MS)
    tracker.feed([numbered(result("call_a", "execute"), "tool", 3, 1, 2)], 300 * MS)
    tracker.feed([commit(3, "tool", result("call_a", "execute")), preview_reset()], 301 * MS)
    tracker.feed([episode_part("x", 4, 1, 1)], 350 * MS)
    (turn,) = tracker.feed([commit(4, "assistant", text("x")), status("waiting")], 400 * MS)
    assert [(n, ns // MS) for n, ns in turn.agent.tool_times] == [("execute", 200)]


# ---------------------------------------------------------------- sub-agents


def test_subagents_spawned_followed_or_not_are_timed_from_their_spawn_call() -> None:
    """The turn above spawns two children: child-1's stream is followed, child-2's is not."""
    recorder = Recorder()
    followed: list[tuple[str, int | None]] = []
    children = Subagents(recorder, on_child=lambda child, at: followed.append((child, at)))
    children.watch("c")
    tracker = TurnTracker(recorder)
    tracker.steps.chat_id, tracker.steps.subagents = "c", children
    # The user's watch socket announces the children between the calls and their results
    # (feeding the turn up to there happens inside agent_turn; the watch events come after,
    # on their own socket, at the times below).
    agent_turn(tracker)
    # The calls were made at 1700 and 1710, the results named child-1 and child-2: counted
    # once each, whichever socket said so first; the watch's created events add nothing.
    assert recorder.counts["subagents_spawned"] == 2
    assert followed == [("child-1", 1700 * MS), ("child-2", 1710 * MS)]
    children.created("child-1", "c", "running", 1800 * MS)
    children.created("child-2", "c", "running", 1830 * MS)
    children.created("someone-else", "not-ours", "running", 1840 * MS)
    assert recorder.counts["subagents_spawned"] == 2
    # Running: 1800 - 1700 and 1830 - 1710.
    assert latency_ms(recorder, "subagent_time_to_running") == (2, 100, 120, 220)
    # child-2 waited for the subagent pool until 2500 (from its call at 1710).
    children.admitted("child-2", 2500 * MS)
    assert latency_ms(recorder, "capacity_wait_subagent") == (1, 790, 790, 790)
    # child-1's own stream: a turn from its spawn call; its snapshot, then live output.
    child = TurnTracker(ChildRecorder(recorder, children, "child-1"), keep_statuses=True)
    child.start(1700 * MS)
    child.connected()

    def feed(events: list[dict[str, object]], at: int) -> None:
        # What the child's stream does after each frame: hand the kept statuses on.
        child.feed(events, at)
        for value, seen in child.take_statuses():
            children.status("child-1", value, seen)

    feed([message(1, "user"), status("running")], 1810 * MS)
    feed([episode_part("found it", 2, 1, 1)], 2200 * MS)
    feed([commit(2, "assistant", text("found it")), status("waiting")], 3000 * MS)
    assert latency_ms(recorder, "subagent_time_to_first_output") == (1, 500, 500, 500)
    # Running as first seen (the watch, 1800) -> its terminal status on its stream.
    assert latency_ms(recorder, "subagent_duration") == (1, 1200, 1200, 1200)
    # child-2 is not followed: it fails on the watch; nothing of its stream is timed.
    children.status("child-2", "error", 4000 * MS)
    children.status("child-2", "error", 4001 * MS)
    assert recorder.counts["subagents_failed"] == 1
    assert recorder.latency["subagent_time_to_first_output"].count == 1
    # The child's turn is not one of the run's turns.
    assert recorder.counts["turns_started"] == 1 and recorder.counts["turns_completed"] == 1


def test_a_child_announced_before_its_call_is_paired_when_the_call_comes() -> None:
    recorder = Recorder()
    children = Subagents(recorder)
    children.watch("p")
    children.created("kid", "p", "running", 120 * MS)
    children.spawn_call("p", 100 * MS)
    assert latency_ms(recorder, "subagent_time_to_running") == (1, 20, 20, 20)
    # The next call waits for the next child.
    children.spawn_call("p", 200 * MS)
    children.created("kid-2", "p", "pending", 230 * MS)
    children.status("kid-2", "running", 260 * MS)
    assert latency_ms(recorder, "subagent_time_to_running") == (2, 20, 60, 80)
    assert recorder.counts["subagents_spawned"] == 2 and len(children) == 2


def test_figures_of_sub_agents_merge_across_processes_like_the_rest() -> None:
    one, two = Recorder(), Recorder()
    for recorder, at in ((one, 100), (two, 300)):
        children = Subagents(recorder)
        children.watch("p")
        children.spawn_call("p", 0)
        children.created("kid", "p", "running", at * MS)
    merged = merge([one.measurement(), two.measurement()])
    assert merged.count("subagents_spawned") == 2
    assert merged.histogram("subagent_time_to_running").count == 2
