"""A capacity step's monitor: its warm-up baseline and the reasons it stops a step early."""

from __future__ import annotations

from loadtest.core.histogram import Histogram
from loadtest.core.measurement import Measurement
from loadtest.core.slo import parse_slo
from loadtest.runner.capacity_command import StepMonitor


def measurement(ttft_ms: list[int], completed: int, failed: int = 0) -> Measurement:
    ttft = Histogram()
    for value in ttft_ms:
        ttft.record(value * 1000)
    return Measurement(
        latency={"time_to_first_output": ttft.to_wire()},
        counts={
            "turns_started": completed + failed,
            "turns_completed": completed,
            "turns_failed": failed,
        },
    )


def test_a_p95_that_cannot_recover_stops_the_step_and_the_warm_up_does_not_count() -> None:
    monitor = StepMonitor(1.0, 10.0, [parse_slo("time_to_first_output.p95 < 400ms")])
    warm_up = [900] * 50  # a slow warm-up is no verdict on the step
    assert monitor(0.5, lambda: measurement(warm_up, 50)) is None
    assert monitor(1.0, lambda: measurement(warm_up, 50)) is None
    assert monitor.baseline is not None and monitor.baseline_at == 1.0
    holding = warm_up + [100] * 95 + [900] * 5  # 5 % breaking it, a third of the way in
    assert monitor(4.0, lambda: measurement(holding, 150)) is None
    lost = warm_up + [100] * 80 + [900] * 20  # 20 % with two thirds still to come
    reason = monitor(5.0, lambda: measurement(lost, 150))
    assert reason == (
        "SLO beyond recovery: time_to_first_output.p95 < 400ms (20 of 100 samples break it)"
    )


def test_an_error_rate_beyond_recovery_and_most_turns_failing_stop_a_step() -> None:
    monitor = StepMonitor(0.0, 10.0, [parse_slo("error_rate < 1%")])
    assert monitor(0.0, lambda: measurement([], 0)) is None
    assert monitor(5.0, lambda: measurement([100] * 90, 90, failed=10)) == (
        "SLO beyond recovery: error_rate < 1% (10 of 100 samples break it)"
    )
    no_slo = StepMonitor(0.0, 10.0, [])
    assert no_slo(0.0, lambda: measurement([], 0)) is None
    assert no_slo(2.0, lambda: measurement([100] * 9, 9, failed=11)) == (
        "failing: 11 of 20 turns failed"
    )
