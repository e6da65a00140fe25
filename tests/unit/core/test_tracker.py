"""The turn tracker gives every per-turn figure of spec/metrics.md, exactly."""

from __future__ import annotations

from loadtest.core.meter import StreamMeter
from loadtest.core.recorder import Recorder
from loadtest.core.tracker import TurnTracker
from loadtest.core.turn import ErrorInfo
from tests.unit.events import MS, error, message, part, queue_update, retry, status


def tracker() -> tuple[Recorder, TurnTracker]:
    recorder = Recorder()
    return recorder, TurnTracker(recorder)


def ms(recorder: Recorder, name: str) -> list[float]:
    """min, p50 (to HDR's 3 significant digits), max of a latency, in ms."""
    hist = recorder.latency[name]
    p50 = hist.value_at_percentile(50) / 1000
    return [hist.min / 1000, float(f"{p50:.3g}"), hist.max / 1000]


def one_turn(recorder: Recorder, t: TurnTracker, start: int = 0, mid: int = 1) -> list:
    t.start(start * MS)
    t.feed([message(mid), status("pending")], (start + 5) * MS)
    t.feed([status("running")], (start + 20) * MS)
    t.feed([part(), part(), part()], (start + 100) * MS)
    t.feed([part()], (start + 130) * MS)
    t.feed([part(), part()], (start + 190) * MS)
    return t.feed(
        [message(mid + 1, "assistant", output_tokens=11, text="x" * 6), status("waiting")],
        (start + 300) * MS,
    )


def test_closed_loop_turn_latencies_are_exact() -> None:
    recorder, t = tracker()
    (turn,) = one_turn(recorder, t)
    assert turn.outcome == "completed" and turn.parts == 6 and turn.output_tokens == 11
    assert ms(recorder, "time_to_running") == [20, 20, 20]
    assert ms(recorder, "time_to_first_output") == [100, 100, 100]
    assert ms(recorder, "time_to_terminal_status") == [300, 300, 300]
    # TPOT = (E2E - TTFT) / (tokens - 1) = 200 ms / 10
    assert ms(recorder, "time_per_output_token") == [20, 20, 20]
    # tokens / (E2E - TTFT) = 11 / 0.2 s = 55 tokens/s (stored in milli-units)
    assert recorder.dist["output_tokens_per_s"].max == 55_000
    recorder.measurement()  # frame gaps are tallied, then folded into the histogram
    gaps = recorder.latency["inter_frame_gap"]
    assert (gaps.count, gaps.min / 1000, gaps.max / 1000) == (2, 30, 60)
    parts = recorder.measurement().histogram("inter_part_gap")
    # 6 parts -> 5 gaps: 0, 0 (first frame), 30, 60, 0 (third frame)
    assert (parts.count, parts.total / 1000) == (5, 90)
    assert recorder.dist["parts_per_frame"].count == 3
    assert recorder.counts["turns_completed"] == 1 and recorder.counts["turns_started"] == 1
    assert recorder.counts["output_tokens"] == 11 and recorder.measurement().count("parts") == 6
    assert not t.busy


def test_conversation_duration_spans_first_start_to_last_terminal() -> None:
    recorder, t = tracker()
    one_turn(recorder, t, start=0, mid=1)
    one_turn(recorder, t, start=1000, mid=3)
    t.finish_conversation()
    assert ms(recorder, "conversation_duration") == [1300, 1300, 1300]
    assert recorder.latency["time_to_first_output"].count == 2


def test_snapshot_events_never_count_as_output() -> None:
    recorder, t = tracker()
    t.start(0)
    t.connected()
    # The snapshot carries buffered parts and a running status: not this turn's output.
    t.feed([status("running"), part(), part(), message(1)], 50 * MS)
    t.feed([part()], 400 * MS)
    (turn,) = t.feed([status("waiting")], 500 * MS)
    assert ms(recorder, "time_to_first_output") == [400, 400, 400]
    assert recorder.counts["snapshot_events"] == 4
    # The turn began before this connection: the snapshot is when running was first seen.
    assert turn.running_at == 50 * MS
    assert ms(recorder, "time_to_running") == [50, 50, 50]


def test_reconnect_snapshot_is_not_counted_twice() -> None:
    _recorder, t = tracker()
    t.start(0)
    t.feed([message(1), status("running")], 10 * MS)
    t.feed([part()], 100 * MS)
    t.feed([message(2, "assistant", output_tokens=4, text="x")], 150 * MS)
    assert t.after_id == 2
    t.connected()  # a reconnect: the snapshot repeats message 2 (an old server ignores after_id)
    t.feed([status("running"), message(1), message(2, "assistant", output_tokens=4)], 200 * MS)
    (turn,) = t.feed([status("waiting")], 250 * MS)
    assert turn.output_tokens == 4 and turn.outcome == "completed"


def test_turn_that_ended_while_disconnected_ends_from_the_snapshot() -> None:
    recorder, t = tracker()
    t.start(0)
    t.feed([message(1), status("running")], 10 * MS)
    t.connected()
    (turn,) = t.feed([status("waiting"), message(2, "assistant", output_tokens=3)], 900 * MS)
    assert turn.outcome == "completed" and not turn.terminal_live
    assert recorder.latency["time_to_terminal_status"].count == 0  # unknown, not invented


def test_snapshot_order_does_not_matter() -> None:
    for order in ([status("waiting"), message(1)], [message(1), status("waiting")]):
        _recorder, t = tracker()
        t.start(0)
        t.connected()
        (turn,) = t.feed(order, 900 * MS)
        assert turn.outcome == "completed" and not t.busy


def test_retry_then_recovery() -> None:
    recorder, t = tracker()
    t.start(0)
    t.feed([message(1), status("running")], 10 * MS)
    t.feed([retry(1, 1000)], 20 * MS)
    t.feed([retry(2, 2000)], 30 * MS)
    t.feed([part()], 40 * MS)
    (turn,) = t.feed([status("waiting")], 50 * MS)
    assert turn.retries == 2 and turn.outcome == "completed"
    c = recorder.counts
    assert (c["retry_events"], c["turns_retried"], c["retry_recovered"], c["retry_exhausted"]) == (
        2,
        1,
        1,
        0,
    )

    assert ms(recorder, "retry_delay") == [1000, 1000, 2000]
    assert recorder.dist["retries_per_turn"].max == 2


def test_retries_are_counted_by_the_errors_kind() -> None:
    recorder, t = tracker()
    t.start(0)
    t.feed([message(1), status("running")], 10 * MS)
    t.feed([retry(1, 1000, "overloaded")], 20 * MS)
    t.feed([retry(2, 2000, "rate_limit")], 30 * MS)
    t.feed([retry(3, 4000, "overloaded")], 40 * MS)
    t.feed([retry(4, 8000)], 50 * MS)  # an older era's: no kind
    measured = recorder.measurement()
    assert measured.counts_under("retries:") == {"overloaded": 2, "rate_limit": 1, "unknown": 1}
    assert measured.count("retry_events") == 4


def test_retry_then_error_records_the_chat_error_fields() -> None:
    recorder, t = tracker()
    t.start(0)
    t.feed([message(1), status("running"), retry(1, 1000)], 10 * MS)
    payload = {
        "message": "overloaded",
        "kind": "overloaded",
        "provider": "anthropic",
        "retryable": True,
        "status_code": 529,
        "detail": "d",
    }
    (turn,) = t.feed([error(payload), status("error")], 60 * MS)
    assert turn.outcome == "failed"
    assert turn.error == ErrorInfo(
        "status_error", "overloaded", "overloaded", "anthropic", True, 529
    )
    c = recorder.counts
    assert (c["turns_failed"], c["retry_exhausted"], c["error_events"]) == (1, 1, 1)
    assert list(recorder.errors) == [
        ("status_error", "overloaded", "anthropic", 529, True, "overloaded")
    ]


def test_an_error_after_its_status_belongs_to_the_turn_that_status_ends() -> None:
    """Era D's sync writes ``status`` then ``error`` (spec §9.3): one error, the turn's."""
    recorder, t = tracker()
    t.start(0)
    t.feed([message(1), status("running")], 1 * MS)
    payload = {"message": "nope", "kind": "auth", "provider": "openai", "retryable": False}
    (turn,) = t.feed([status("error"), error(payload)], 2 * MS)
    assert turn.outcome == "failed" and turn.error is not None
    assert (turn.error.stage, turn.error.kind) == ("status_error", "auth")
    assert recorder.counts["error_events"] == 1
    assert list(recorder.errors) == [("status_error", "auth", "openai", None, False, "nope")]


def test_legacy_error_forms_are_kind_generic() -> None:
    for payload in ("plain string", {"message": "seed form"}):
        _recorder, t = tracker()
        t.start(0)
        t.feed([message(1), status("running")], 1 * MS)
        (turn,) = t.feed([error(payload), status("error")], 2 * MS)
        assert turn.error is not None and turn.error.kind == "generic"


def test_error_status_without_error_event_still_fails_with_a_stage() -> None:
    _recorder, t = tracker()
    t.start(0)
    t.feed([message(1), status("running")], 1 * MS)
    (turn,) = t.feed([status("error")], 2 * MS)
    assert turn.error is not None and turn.error.stage == "status_error"


def test_stream_error_envelope_is_recorded_as_stream_event() -> None:
    recorder, t = tracker()
    t.start(0)
    t.feed([message(1)], 1 * MS)
    t.feed([{"type": "error", "error": {"message": "boom"}, "chatload_stream_error": True}], 2 * MS)
    assert [key[0] for key in recorder.errors] == ["stream_event"]
    assert t.busy  # the turn goes on: the caller decides whether to reconnect or fail it


def test_queued_turn_is_promoted_without_a_terminal_status() -> None:
    recorder, t = tracker()
    first = t.start(0)
    t.feed([message(1), status("pending"), status("running")], 10 * MS)
    second = t.start(50 * MS)
    assert second.queued and t.active is first
    t.feed([queue_update(1)], 60 * MS)
    t.feed([part()], 100 * MS)
    # Era A: the queue head is promoted; no "waiting" between the two turns.
    ended = t.feed(
        [
            message(2, "assistant", output_tokens=2, text="x"),
            message(3),
            status("pending"),
            queue_update(0),
            status("running"),
        ],
        200 * MS,
    )
    assert ended == [first] and first.outcome == "promoted"
    assert t.active is second and second.running_at == 200 * MS
    t.feed([part()], 260 * MS)
    (turn,) = t.feed([status("waiting")], 300 * MS)
    assert turn is second
    assert ms(recorder, "queue_wait") == [150, 150, 150]  # queued at 50 -> its message at 200
    assert ms(recorder, "time_to_first_output") == [100, 100, 210]
    assert recorder.counts["turns_completed"] == 2
    assert recorder.maxima["max_queue_length"] == 1


def test_interrupt_counts_as_interrupted() -> None:
    recorder, t = tracker()
    t.start(0)
    t.feed([message(1), status("running"), part()], 10 * MS)
    t.interrupt_requested()
    (turn,) = t.feed([status("interrupting"), status("waiting")], 20 * MS)
    assert turn.outcome == "interrupted"
    assert recorder.counts["turns_interrupted"] == 1 and recorder.counts["turns_completed"] == 1


def test_stale_terminal_status_before_the_user_message_does_not_end_the_turn() -> None:
    _recorder, t = tracker()
    t.start(0)
    assert t.feed([status("waiting")], 1 * MS) == []
    assert t.busy


def test_timeout_and_transport_failure_and_unfinished() -> None:
    recorder, t = tracker()
    t.start(0)
    assert t.expire(5 * MS, timeout_ns=10 * MS) == []
    (turn,) = t.expire(11 * MS, timeout_ns=10 * MS)
    assert turn.error is not None and turn.error.stage == "timeout"
    t.start(20 * MS)
    t.start(21 * MS)
    failed = t.fail(ErrorInfo("stream_closed", "closed 1006"), 30 * MS)
    assert [x.outcome for x in failed] == ["failed", "failed"]
    t.start(40 * MS)
    (left,) = t.abandon(50 * MS)
    assert left.outcome == "unfinished"
    c = recorder.counts
    assert (c["turns_started"], c["turns_failed"], c["turns_unfinished"]) == (4, 3, 1)
    stages = sorted(key[0] for key in recorder.errors)
    assert stages == ["stream_closed", "timeout"]
    assert recorder.errors[("stream_closed", None, None, None, None, "closed 1006")] == 2


def test_open_loop_records_corrected_and_uncorrected_latency() -> None:
    recorder, t = tracker()
    t.start(300 * MS, intended=100 * MS)  # the generator sent it 200 ms late
    t.feed([message(1), status("running")], 310 * MS)
    t.feed([part()], 400 * MS)
    t.feed([status("waiting")], 500 * MS)
    assert ms(recorder, "schedule_lag") == [200, 200, 200]
    assert ms(recorder, "time_to_first_output") == [300, 300, 300]
    assert ms(recorder, "time_to_first_output_uncorrected") == [100, 100, 100]
    assert ms(recorder, "time_to_terminal_status") == [400, 400, 400]
    assert ms(recorder, "time_to_terminal_status_uncorrected") == [200, 200, 200]


def test_goodput_counts_turns_within_every_per_turn_slo() -> None:
    recorder, t = tracker()
    recorder.turn_slos = {"time_to_first_output": 150_000}  # 150 ms
    one_turn(recorder, t, start=0, mid=1)  # TTFT 100 ms: good
    t.start(1000 * MS)
    t.feed([message(3), status("running")], 1010 * MS)
    t.feed([part()], 1200 * MS)  # TTFT 200 ms: not good
    t.feed([status("waiting")], 1300 * MS)
    assert recorder.counts["turns_good"] == 1


def test_parts_with_no_turn_in_flight_are_orphans() -> None:
    recorder, t = tracker()
    t.feed([part(), part()], 1 * MS)
    assert recorder.counts["orphan_parts"] == 2 and recorder.counts["parts"] == 0


def test_an_era_a_error_envelope_as_the_first_frame_is_kept_at_stream_open() -> None:
    recorder, t = tracker()
    meter = StreamMeter(recorder, t)
    t.start(0)
    t.connected()
    meter.feed(b'{"type":"error","data":{"message":"Chat not found.","detail":"gone"}}', 5 * MS)
    assert recorder.counts["error_events"] == 1
    (row,) = [(key, n) for key, n in recorder.errors.items()]
    assert row == (("stream_open", "generic", None, None, None, "Chat not found.: gone"), 1)


def test_every_wrongly_typed_field_is_a_decode_error_naming_it() -> None:
    recorder, t = tracker()
    t.start(0)
    bad: list[tuple[dict[str, object], str]] = [
        ({"type": "queue_update", "queued_messages": 1}, "queue_update.queued_messages"),
        ({"type": "message", "message": "x"}, "message.message"),
        ({"type": "message", "message": {"id": "7", "role": "user"}}, "message.message.id"),
        ({"type": "message", "message": {"id": 8, "role": 1}}, "message.message.role"),
        ({"type": "message", "message": {"id": 9, "usage": []}}, "message.message.usage"),
        (
            {
                "type": "message",
                "message": {"id": 10, "role": "assistant", "usage": {"output_tokens": 2**70}},
            },
            "message.message.usage.output_tokens",
        ),
        ({"type": "status", "status": "running"}, "status.status"),
        ({"type": "status", "status": {"status": None}}, "status.status.status"),
        ({"type": "retry", "retry": 3}, "retry.retry"),
        ({"type": "retry", "retry": {"delay_ms": -1}}, "retry.retry.delay_ms"),
    ]
    for i, (event, field) in enumerate(bad):
        t.feed([event], (i + 1) * MS)
        assert recorder.counts["decode_errors"] == i + 1, field
        assert any(key[5].startswith(field + ":") for key in recorder.errors), field
    # The turn lives on: a well-formed end still ends it.
    (turn,) = t.feed([message(20), status("waiting")], 50 * MS)
    assert turn.outcome == "completed"


def test_a_rejected_queued_turn_fails_alone_and_leaves_the_queue() -> None:
    recorder, t = tracker()
    first = t.start(0)
    second = t.start(10 * MS)
    assert second.queued and t.busy
    (failed,) = t.reject(second, ErrorInfo("create_message", "HTTP 429"), 20 * MS)
    assert failed is second and failed.outcome == "failed"
    assert t.active is first and recorder.counts["turns_failed"] == 1
    (done,) = t.feed([message(1), status("waiting")], 90 * MS)
    assert done is first and not t.busy


def preview_reset() -> dict[str, object]:
    return {"type": "preview_reset", "chat_id": "c"}


def test_a_retry_after_partial_output_keeps_ttft_and_moves_kept_output() -> None:
    recorder, t = tracker()
    t.start(0)
    t.feed([message(1), status("running")], 10 * MS)
    t.feed([part(), part()], 100 * MS)  # attempt 0 streams...
    t.feed([part()], 110 * MS)
    t.feed([retry(1, 1000), preview_reset()], 150 * MS)  # ...and is thrown away
    t.feed([part()], 300 * MS)  # attempt 1
    t.feed([part()], 320 * MS)
    (turn,) = t.feed(
        [message(2, "assistant", 5, text="xx"), preview_reset(), status("waiting")], 400 * MS
    )
    assert ms(recorder, "time_to_first_output") == [100, 100, 100]
    assert ms(recorder, "time_to_first_kept_output") == [300, 300, 300]
    # The reset after the commit threw nothing away: only attempt 0's three parts.
    assert recorder.counts["preview_resets"] == 2
    assert recorder.counts["parts_discarded"] == 3 and turn.parts_discarded == 3


def test_with_nothing_thrown_away_kept_output_is_ttft() -> None:
    recorder, t = tracker()
    t.start(0)
    t.feed([message(1), status("running")], 10 * MS)
    t.feed([part()], 120 * MS)
    t.feed([part()], 130 * MS)
    t.feed([status("waiting")], 200 * MS)  # eras A-C: no commit event needed
    assert ms(recorder, "time_to_first_kept_output") == ms(recorder, "time_to_first_output")
    assert recorder.counts["parts_discarded"] == 0


def test_the_snapshots_preview_reset_is_not_counted_and_a_failed_turn_keeps_nothing() -> None:
    recorder, t = tracker()
    t.start(0)
    t.connected()
    t.feed([message(1), status("running"), preview_reset()], 10 * MS)
    t.feed([part()], 50 * MS)
    t.feed([preview_reset(), error({"message": "x", "kind": "overloaded"})], 60 * MS)
    t.feed([status("error")], 70 * MS)
    assert recorder.counts["preview_resets"] == 1 and recorder.counts["parts_discarded"] == 1
    assert recorder.latency["time_to_first_kept_output"].count == 0


def test_a_turn_whose_output_came_before_its_stream_is_counted_without_ttft() -> None:
    recorder, t = tracker()
    t.start(0)
    t.connected()  # the stream connects late: the parts are already in its snapshot
    t.feed([status("running"), part(), part(), message(1)], 500 * MS)
    t.feed([message(2, "assistant", 3), status("waiting")], 600 * MS)
    snapshot = recorder.measurement()
    assert snapshot.count("turns_completed") == 1
    assert snapshot.count("turns_no_live_output") == 1
    assert recorder.latency["time_to_first_output"].count == 0


def test_a_kind_no_one_declared_is_passed_over_live_and_in_a_snapshot() -> None:
    recorder, t = tracker()
    turn = t.start(0)
    t.connected()
    novel = {"type": "thought_bubble", "thought_bubble": {"x": 1}}
    t.feed([novel, message(1), status("running")], 5 * MS)  # the snapshot
    assert turn.user_seen and turn.running_at == 5 * MS
    t.feed([part(), novel, part()], 10 * MS)
    (ended,) = t.feed([novel, status("waiting"), novel], 20 * MS)
    assert ended is turn and turn.outcome == "completed" and turn.parts == 2
    assert recorder.counts["decode_errors"] == 0


def test_a_snapshot_takes_its_status_after_its_messages_whatever_their_order() -> None:
    recorder, t = tracker()
    turn = t.start(0)
    t.connected()
    # The turn ended while no stream was open: the status comes first in this snapshot.
    (ended,) = t.feed([status("waiting"), message(1), message(2, "assistant")], 50 * MS)
    assert ended is turn and turn.outcome == "completed" and not turn.terminal_live
    assert recorder.counts["snapshot_events"] == 3


def test_a_retry_counts_live_only() -> None:
    recorder, t = tracker()
    turn = t.start(0)
    t.connected()
    t.feed([retry(1, 100), message(1)], 5 * MS)  # (never sent so, but not counted if it were)
    t.feed([retry(2, 200)], 10 * MS)
    assert recorder.counts["retry_events"] == 1 and turn.retries == 1


def test_turn_endings_are_told_only_by_what_feed_and_fail_return() -> None:
    _, t = tracker()
    first, second = t.start(0), t.start(1)
    assert list(t.feed([message(1), status("running")], 5 * MS)) == []
    assert t.feed([message(2)], 10 * MS) == [first]  # the queued message was promoted
    assert t.fail(ErrorInfo("stream_closed", "gone"), 20 * MS) == [second]
    assert (first.outcome, second.outcome) == ("promoted", "failed")
    assert t.abandon(30 * MS) == [] and t.expire(40 * MS, 1) == []


def test_live_statuses_are_kept_for_the_caller_and_taken_once() -> None:
    recorder = Recorder()
    tracker = TurnTracker(recorder, keep_statuses=True)
    tracker.start(0)
    tracker.connected()
    tracker.feed([status("running")], 5)  # the connect snapshot's: not live
    tracker.feed([status("running")], 10)
    tracker.feed([status("waiting")], 20)
    assert tracker.take_statuses() == [("running", 10), ("waiting", 20)]
    assert tracker.take_statuses() == []
    plain = TurnTracker(recorder)
    plain.start(0)
    plain.feed([status("running")], 10)
    assert plain.statuses == []


def test_a_kind_declared_counted_is_counted_live_without_an_entry_of_its_own() -> None:
    from loadtest.core.tracker import HANDLERS, counting
    from loadtest.protocol.eras import Era
    from loadtest.protocol.events import EventKind

    kind = EventKind("usage_update", "usage_update", True, Era.D, "a test's kind", "pings")
    recorder = Recorder()
    tracker = TurnTracker(recorder)
    tracker.start(0)
    tracker.connected()
    event = {"type": kind.name, "chat_id": "c", "usage_update": {}}
    HANDLERS[kind.name] = counting(kind)
    try:
        tracker.feed([event], 5)  # the connect snapshot: not counted
        tracker.feed([event, event], 10)
    finally:
        del HANDLERS[kind.name]
    assert recorder.counts["pings"] == 2
