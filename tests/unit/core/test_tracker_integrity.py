"""Stream integrity and era-D episodes, counted exactly from made-up frames."""

from __future__ import annotations

from loadtest.core.recorder import Recorder
from loadtest.core.tracker import TurnTracker
from loadtest.core.turn import Turn
from tests.unit.events import (
    MS,
    episode_part,
    message,
    part,
    preview_reset,
    retry,
    status,
)

INTEGRITY = ("seq_gaps", "seq_duplicates", "seq_out_of_order", "content_mismatches")


def started() -> tuple[Recorder, TurnTracker, Turn]:
    """A running era-D turn whose user message (history 1) was committed live."""
    recorder = Recorder()
    tracker = TurnTracker(recorder)
    turn = tracker.start(0)
    tracker.connected()
    tracker.feed([preview_reset()], 1 * MS)  # an empty chat's snapshot
    tracker.feed([message(1), status("running"), preview_reset()], 10 * MS)
    return recorder, tracker, turn


def found(recorder: Recorder) -> dict[str, int]:
    return {name: recorder.counts[name] for name in (*INTEGRITY, "turns_checked")}


def test_a_clean_episode_passes_and_is_checked() -> None:
    recorder, t, turn = started()
    t.feed([episode_part("Hel", 2, 1, 1), episode_part("lo", 2, 1, 2)], 100 * MS)
    t.feed([episode_part(" you", 2, 1, 3)], 110 * MS)
    t.feed([message(2, "assistant", text="Hello you"), preview_reset()], 120 * MS)
    (ended,) = t.feed([status("waiting")], 130 * MS)
    assert ended is turn and turn.outcome == "completed"
    assert found(recorder) == dict.fromkeys(INTEGRITY, 0) | {"turns_checked": 1}


def test_a_lost_part_is_a_gap_and_a_mismatch_and_fails_the_turn() -> None:
    recorder, t, turn = started()
    t.feed([episode_part("a", 2, 1, 1), episode_part("c", 2, 1, 3)], 100 * MS)
    t.feed([episode_part("d", 2, 1, 4)], 110 * MS)
    t.feed([message(2, "assistant", text="abcd"), preview_reset(), status("waiting")], 120 * MS)
    assert found(recorder) == {
        "seq_gaps": 1,
        "seq_duplicates": 0,
        "seq_out_of_order": 0,
        "content_mismatches": 1,
        "turns_checked": 1,
    }
    assert turn.outcome == "failed" and turn.error is not None
    assert turn.error.stage == "integrity"
    assert turn.error.message == "stream integrity: 1 content_mismatches, 1 seq_gaps"
    assert recorder.counts["turns_failed"] == 1 and recorder.counts["turns_completed"] == 0


def test_a_repeated_part_is_a_duplicate_and_its_text_is_not_counted_twice() -> None:
    recorder, t, turn = started()
    t.feed([episode_part("a", 2, 1, 1), episode_part("b", 2, 1, 2)], 100 * MS)
    t.feed([episode_part("b", 2, 1, 2), episode_part("c", 2, 1, 3)], 110 * MS)
    t.feed([message(2, "assistant", text="abc"), preview_reset(), status("waiting")], 120 * MS)
    assert found(recorder)["seq_duplicates"] == 1
    assert found(recorder)["content_mismatches"] == 0 and found(recorder)["seq_gaps"] == 0
    assert turn.error is not None and turn.error.stage == "integrity"


def test_a_swapped_pair_is_out_of_order_not_a_gap() -> None:
    recorder, t, _ = started()
    t.feed([episode_part("a", 2, 1, 1), episode_part("c", 2, 1, 3)], 100 * MS)
    t.feed([episode_part("b", 2, 1, 2), episode_part("d", 2, 1, 4)], 110 * MS)
    t.feed([message(2, "assistant", text="abcd"), preview_reset(), status("waiting")], 120 * MS)
    assert found(recorder) == {
        "seq_gaps": 0,
        "seq_duplicates": 0,
        "seq_out_of_order": 1,
        "content_mismatches": 1,  # "acbd" was shown, "abcd" committed
        "turns_checked": 1,
    }


def test_a_retry_after_partial_output_starts_a_new_episode_and_its_text_afresh() -> None:
    recorder, t, turn = started()
    t.feed([episode_part("x", 2, 1, 1), episode_part("y", 2, 1, 3)], 100 * MS)  # 2 is lost
    t.feed([retry(1, 1000), preview_reset()], 150 * MS)
    t.feed([episode_part("o", 2, 2, 1), episode_part("k", 2, 2, 2)], 300 * MS)
    t.feed([message(2, "assistant", text="ok"), preview_reset(), status("waiting")], 400 * MS)
    # The gap of the thrown-away attempt still counts; the kept text matches.
    assert found(recorder)["seq_gaps"] == 1 and found(recorder)["content_mismatches"] == 0
    assert recorder.counts["parts_discarded"] == 2 and turn.parts_discarded == 2
    assert turn.first_output_at == 100 * MS and turn.first_kept_output_at == 300 * MS


def test_a_part_of_a_finished_episode_is_out_of_order() -> None:
    recorder, t, _ = started()
    t.feed([episode_part("a", 2, 1, 1)], 100 * MS)
    t.feed([message(2, "assistant", text="a"), preview_reset()], 110 * MS)
    t.feed([episode_part("late", 2, 1, 2)], 120 * MS)
    assert found(recorder)["seq_out_of_order"] == 1


def test_the_era_d_snapshot_replays_the_episode_whole_so_it_is_checked() -> None:
    recorder = Recorder()
    t = TurnTracker(recorder)
    turn = t.start(0)
    t.connected()  # the stream opens mid-step: the snapshot replays parts 1..2
    replayed = [episode_part("a", 2, 1, 1), episode_part("b", 2, 1, 2)]
    t.feed([message(1), status("running"), preview_reset(), *replayed], 50 * MS)
    t.feed([episode_part("c", 2, 1, 4)], 60 * MS)  # 3 never comes
    t.feed([message(2, "assistant", text="abcd"), preview_reset(), status("waiting")], 70 * MS)
    assert found(recorder)["seq_gaps"] == 1 and found(recorder)["content_mismatches"] == 1
    assert turn.checked


def test_eras_a_to_c_skip_a_step_replayed_in_part_but_check_the_next() -> None:
    recorder = Recorder()
    t = TurnTracker(recorder)
    t.start(0)
    t.connected()  # the buffer replays what is left of the step: it cannot be checked
    t.feed([status("running"), part("tail"), message(1)], 50 * MS)
    t.feed([part("b")], 60 * MS)
    t.feed([message(2, "assistant", text="whole text")], 70 * MS)  # not compared
    assert found(recorder)["content_mismatches"] == 0
    t.feed([part("t"), part("wo")], 80 * MS)  # a second step, seen from its start
    t.feed([message(3, "assistant", text="tw0"), status("waiting")], 90 * MS)
    assert found(recorder)["content_mismatches"] == 1


def test_an_era_a_to_c_repeated_delta_is_a_mismatch() -> None:
    recorder = Recorder()
    t = TurnTracker(recorder)
    t.start(0)
    t.connected()
    t.feed([status("pending")], 5 * MS)  # nothing in progress: the next step is seen whole
    t.feed([message(1), status("running")], 10 * MS)
    t.feed([part("a"), part("b"), part("b")], 20 * MS)
    t.feed([message(2, "assistant", text="ab"), status("waiting")], 30 * MS)
    assert found(recorder)["content_mismatches"] == 1 and found(recorder)["seq_duplicates"] == 0


def test_a_message_resent_with_other_content_is_an_update_and_the_same_a_duplicate() -> None:
    """Spec §9.1: no revision on the wire. Coder re-sends a message whose row changed; a
    client tells the update from a duplicate by what it says."""
    recorder, t, turn = started()
    t.feed([episode_part("a", 2, 1, 1)], 100 * MS)
    t.feed([message(2, "assistant", text="a"), preview_reset()], 110 * MS)
    t.feed([message(2, "assistant", text="a")], 115 * MS)  # a copy: nothing new
    assert recorder.counts["message_updates"] == 0
    t.feed([message(2, "assistant", text="a, edited")], 120 * MS)
    assert recorder.counts["message_updates"] == 1
    (ended,) = t.feed([status("waiting")], 130 * MS)
    assert ended is turn and turn.outcome == "completed"
    assert found(recorder)["content_mismatches"] == 0


def test_the_history_after_a_history_reset_is_a_baseline_not_updates() -> None:
    recorder, t, _ = started()
    t.feed([message(2, "assistant", text="a"), preview_reset()], 110 * MS)
    reset = {"type": "history_reset", "chat_id": "c"}
    t.feed([reset, message(1), message(2, "assistant", text="b")], 120 * MS)
    assert recorder.counts["message_updates"] == 0


def test_an_era_d_preview_cut_short_by_its_commit_is_not_a_mismatch() -> None:
    """Spec §9.4: the stream loop rejects an episode's parts once the commit's sync passed
    it, so a lagging relay shows a prefix of the step; in eras A-C that is a loss."""
    recorder, t, _ = started()
    t.feed([preview_reset(), episode_part("ab", 2, 1, 1)], 100 * MS)
    t.feed([message(2, "assistant", text="abcd"), preview_reset()], 110 * MS)
    assert found(recorder)["content_mismatches"] == 0
    t.feed([episode_part("ab", 3, 1, 1)], 120 * MS)  # not a prefix: a mismatch
    t.feed([message(3, "assistant", text="xyab"), preview_reset()], 130 * MS)
    assert found(recorder)["content_mismatches"] == 1
    recorder = Recorder()  # era B: no episodes
    t = TurnTracker(recorder)
    t.start(0)
    t.connected()
    t.feed([status("pending")], 5 * MS)
    t.feed([message(1), status("running")], 10 * MS)
    t.feed([part("ab")], 100 * MS)
    t.feed([message(2, "assistant", text="abcd")], 110 * MS)
    assert found(recorder)["content_mismatches"] == 1


def test_a_wild_seq_costs_no_memory_and_counts_its_gap() -> None:
    recorder, t, _ = started()
    t.feed([episode_part("a", 2, 1, 1), episode_part("b", 2, 1, 1_000_001)], 100 * MS)
    assert found(recorder)["seq_gaps"] == 999_999


def test_a_malformed_seq_is_a_decode_error_not_an_exception() -> None:
    recorder, t, _ = started()
    bad = episode_part("a", 2, 1, 1)
    bad["message_part"]["seq"] = "one"
    t.feed([bad, {"type": "message_part", "chat_id": "c", "message_part": None}], 100 * MS)
    assert recorder.counts["decode_errors"] == 2


def action_required(*call_ids: str) -> dict[str, object]:
    calls = [{"tool_call_id": c, "tool_name": "t", "args": "{}"} for c in call_ids]
    return {"type": "action_required", "chat_id": "c", "action_required": {"tool_calls": calls}}


def test_requires_action_pauses_the_turn_and_times_the_action() -> None:
    recorder, t, turn = started()
    t.feed([message(2, "assistant", text=""), status("requires_action")], 50 * MS)
    t.feed([preview_reset(), action_required("call_1")], 60 * MS)
    assert turn.outcome is None and turn.tool_calls == ["call_1"]
    turn.tool_calls = []  # the driver answered
    t.feed([message(3, "tool"), status("running"), preview_reset()], 300 * MS)
    t.feed([episode_part("ok", 5, 1, 1)], 350 * MS)
    t.feed([message(4, "assistant", text="ok"), preview_reset()], 360 * MS)
    (ended,) = t.feed([status("waiting")], 400 * MS)
    assert ended is turn and turn.outcome == "completed"
    assert recorder.latency["time_to_action_required"].max == 60_000  # µs
    assert recorder.counts["turns_requires_action"] == 1


def test_a_late_streams_snapshot_still_asks_for_the_tools_but_times_nothing() -> None:
    recorder = Recorder()
    t = TurnTracker(recorder)
    turn = t.start(0)
    t.connected()
    t.feed([message(1), status("requires_action"), action_required("a", "b"), preview_reset()], 5)
    assert turn.tool_calls == ["a", "b"] and turn.action_required_at is None
    t.feed([action_required()], 6)  # no calls: malformed, kept as a decode error
    assert recorder.counts["decode_errors"] == 1
