"""Builders of an agent's stream (protocol §10.4) for the tests: tool parts, commits, and one
made-up turn of three steps with two tools in one step, a tool error, a retry inside step 2
and two sub-agents."""

from __future__ import annotations

from typing import Any

from loadtest.core.recorder import Recorder
from loadtest.core.steps import ChildRecorder, Subagents
from loadtest.core.tracker import TurnTracker
from loadtest.core.turn import Turn
from tests.unit.events import MS, episode_part, message, preview_reset, retry, status

Part = dict[str, Any]


def numbered(part: Part, role: str, history: int, attempt: int, seq: int) -> dict[str, Any]:
    """A ``message_part`` event of an era-D episode (§10.4: role, part, episode, seq)."""
    return {
        "type": "message_part",
        "chat_id": "c",
        "message_part": {
            "role": role,
            "part": part,
            "history_version": history,
            "generation_attempt": attempt,
            "seq": seq,
        },
    }


def call_delta(call: str, name: str) -> Part:
    return {"type": "tool-call", "tool_call_id": call, "tool_name": name, "args_delta": "{}"}


def call(call: str, name: str) -> Part:
    return {
        "type": "tool-call",
        "tool_call_id": call,
        "tool_name": name,
        "args": {},
        "created_at": "2026-12-07T00:00:00Z",
    }


def result(call: str, name: str, value: Any = None, is_error: bool = False) -> Part:
    part: Part = {
        "type": "tool-result",
        "tool_call_id": call,
        "tool_name": name,
        "result": value if value is not None else {"output": "ok"},
        "created_at": "2026-12-07T00:00:00Z",
    }
    if is_error:
        part["is_error"] = True
    return part


def commit(mid: int, role: str, *content: Part) -> dict[str, Any]:
    """A committed ``message`` of ``role`` holding ``content`` (an assistant's with usage)."""
    event = message(mid, role, output_tokens=5 if role == "assistant" else None)
    event["message"]["content"] = list(content)
    return event


def text(value: str) -> Part:
    return {"type": "text", "text": value}


def agent_turn(t: TurnTracker) -> Turn:
    """One turn of three steps, as §10.4 orders it, with times in ms:
    step 1 streams text and calls two tools (execute, read_file) and commits at 170; the
    results come at 400 and 520 (read_file's an error); step 2 streams at 600, is retried
    (its output thrown away) and calls spawn_agent twice (1700, 1710), committed at 1720; the
    children are reported at 1900 and 1950; step 3 streams at 2000 and ends the turn at 2100.
    """
    t.start(0)
    t.feed([message(1, "user"), status("running")], 5 * MS)
    # Step 1: episode (2, 1).
    t.feed([episode_part("Let me", 2, 1, 1), episode_part("look", 2, 1, 2)], 100 * MS)
    t.feed(
        [
            numbered(call_delta("call_a", "execute"), "assistant", 2, 1, 3),
            numbered(call("call_a", "execute"), "assistant", 2, 1, 4),
        ],
        150 * MS,
    )
    t.feed([numbered(call("call_b", "read_file"), "assistant", 2, 1, 5)], 160 * MS)
    t.feed(
        [
            commit(
                2,
                "assistant",
                text("Let melook"),
                call("call_a", "execute"),
                call("call_b", "read_file"),
            ),
            preview_reset(),
        ],
        170 * MS,
    )
    # Two results, in call order, each its own episode and commit; read_file failed.
    t.feed([numbered(result("call_a", "execute"), "tool", 3, 1, 1)], 400 * MS)
    t.feed([commit(3, "tool", result("call_a", "execute")), preview_reset()], 401 * MS)
    t.feed(
        [
            numbered(result("call_b", "read_file", is_error=True), "tool", 4, 1, 1),
            commit(4, "tool", result("call_b", "read_file", is_error=True)),
            preview_reset(),
        ],
        520 * MS,
    )
    # Step 2, attempt 1: output, then a retry throws it away; attempt 2 spawns two children.
    t.feed([episode_part("abandoned", 5, 1, 1)], 600 * MS)
    t.feed([retry(1, 1000, "overloaded")], 650 * MS)
    t.feed([preview_reset()], 1650 * MS)
    t.feed(
        [
            episode_part("again", 5, 2, 1),
            numbered(call("call_c", "spawn_agent"), "assistant", 5, 2, 2),
        ],
        1700 * MS,
    )
    t.feed([numbered(call("call_d", "spawn_agent"), "assistant", 5, 2, 3)], 1710 * MS)
    t.feed(
        [
            commit(
                5,
                "assistant",
                text("again"),
                call("call_c", "spawn_agent"),
                call("call_d", "spawn_agent"),
            ),
            preview_reset(),
        ],
        1720 * MS,
    )
    spawned = {"chat_id": "child-1", "title": "t", "status": "running", "type": "general"}
    t.feed(
        [
            numbered(result("call_c", "spawn_agent", spawned), "tool", 6, 1, 1),
            commit(6, "tool", result("call_c", "spawn_agent", spawned)),
            preview_reset(),
        ],
        1900 * MS,
    )
    other = dict(spawned, chat_id="child-2")
    t.feed(
        [
            numbered(result("call_d", "spawn_agent", other), "tool", 7, 1, 1),
            commit(7, "tool", result("call_d", "spawn_agent", other)),
            preview_reset(),
        ],
        1950 * MS,
    )
    # Step 3: the answer.
    t.feed([episode_part("done", 8, 1, 1)], 2000 * MS)
    (turn,) = t.feed([commit(9, "assistant", text("done")), status("waiting")], 2100 * MS)
    return turn


def agent_recorder() -> Recorder:
    """A recorder fed ``agent_turn`` and its two children (child-1 followed, child-2 not,
    child-2 waiting for the subagent pool until 2500 ms and failing)."""
    recorder = Recorder()
    children = Subagents(recorder)
    children.watch("c")
    tracker = TurnTracker(recorder)
    tracker.steps.chat_id, tracker.steps.subagents = "c", children
    agent_turn(tracker)
    children.created("child-1", "c", "running", 1800 * MS)
    children.created("child-2", "c", "running", 1830 * MS)
    children.admitted("child-2", 2500 * MS)
    child = TurnTracker(ChildRecorder(recorder, children, "child-1"))
    child.start(1700 * MS)
    child.connected()
    child.feed([message(1, "user"), status("running")], 1810 * MS)
    child.feed([episode_part("found it", 2, 1, 1)], 2200 * MS)
    child.feed([commit(2, "assistant", text("found it")), status("waiting")], 3000 * MS)
    children.status("child-2", "error", 4000 * MS)
    recorder.counts["subagents_followed"] += 1
    return recorder
