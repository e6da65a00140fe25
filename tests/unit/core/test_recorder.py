"""The recorder's own rules: error rows are capped."""

from __future__ import annotations

from loadtest.core.recorder import Recorder
from loadtest.core.turn import ErrorInfo


def test_error_rows_are_capped() -> None:
    recorder = Recorder()
    for i in range(500):
        recorder.error(ErrorInfo("create_chat", f"distinct message {i}", status_code=500), 0)
    assert len(recorder.errors) == 201
    assert sum(recorder.errors.values()) == 500


def test_a_chats_first_turn_is_also_kept_alone_for_scaletests_phase() -> None:
    """time_to_running, TTFT and E2E of every turn, and of first turns alone (``_initial``):
    the follow-ups are the difference, exactly."""
    from loadtest.core.turn import Turn

    recorder = Recorder()
    ms = 1_000_000
    for t0, initial, ttft in ((0, True, 300), (10_000 * ms, False, 100), (20_000 * ms, False, 120)):
        turn = Turn(t0=t0, initial=initial)
        turn.running_at, turn.first_output_at = t0 + 50 * ms, t0 + ttft * ms
        turn.terminal_at, turn.outcome = t0 + 900 * ms, "completed"
        recorder.turn_ended(turn)
    measured = recorder.measurement()
    assert measured.histogram("time_to_first_output").count == 3
    first = measured.histogram("time_to_first_output_initial")
    assert (first.count, first.total) == (1, 300_000)
    assert measured.histogram("time_to_running_initial").total == 50_000
    assert measured.histogram("time_to_terminal_status_initial").count == 1


def test_a_live_view_gets_every_figure_but_the_time_series() -> None:
    recorder = Recorder(0, 0.0)
    for second in range(3):
        recorder.frame(second * 1_000_000_000 + 5, 120, 2)
    recorder.latency["time_to_first_output"].record(1_500)
    whole, live = recorder.measurement(), recorder.measurement(series=False)
    assert len(whole.series) == 3 and live.series == {}
    assert live.counts == whole.counts and live.counts["frames"] == 3
    assert live.latency == whole.latency and live.dist == whole.dist
