"""SLO expressions: parsed against the figure list, units, goodput bounds, verdicts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loadtest.core.recorder import Recorder
from loadtest.core.slo import SloError, evaluate, parse_slo, per_turn_bounds
from loadtest.core.tracker import TurnTracker
from loadtest.report.build import build_report
from loadtest.report.model import Load, RunInfo, Target
from tests.unit.events import MS, message, part, status


def test_slo_parsing_and_units() -> None:
    slo = parse_slo("time_to_first_output.p95 < 2s")
    assert (slo.figure, slo.op, slo.bound, slo.latency) == (
        "time_to_first_output.p95",
        "<",
        2000.0,
        "time_to_first_output",
    )
    assert parse_slo("error_rate < 1%").bound == 0.01
    assert parse_slo("events_per_s >= 1000").bound == 1000.0
    for bad in ("error_rate < 5ms", "time_to_first_output.p95 < 5%", "nonsense", "x <"):
        with pytest.raises(SloError):
            parse_slo(bad)


def test_per_turn_bounds_feed_goodput() -> None:
    slos = [
        parse_slo("time_to_first_output.p95 < 2000ms"),
        parse_slo("time_to_first_output.p99 <= 1500ms"),
        parse_slo("error_rate < 1%"),
    ]
    assert per_turn_bounds(slos) == {"time_to_first_output": 1_500_000}


def test_slo_evaluation_against_a_report() -> None:
    recorder = Recorder()
    recorder_tracker = TurnTracker(recorder)
    recorder_tracker.start(0)
    recorder_tracker.feed([message(1), status("running")], 10 * MS)
    recorder_tracker.feed([part()], 300 * MS)
    recorder_tracker.feed([status("waiting")], 400 * MS)
    started = datetime(2026, 11, 21, tzinfo=UTC)
    run = RunInfo(
        started_at=started,
        ended_at=started,
        duration_s=1,
        complete=True,
        scenario="s",
        workers=0,
        load=Load(mode="closed", users=1),
        target=Target(url="http://127.0.0.1:1", era="a"),
    )
    report = build_report(recorder.measurement(), run)
    result = evaluate(
        report.figure,
        [
            parse_slo("time_to_first_output.p95 < 500ms"),
            parse_slo("time_to_first_output.p95 < 200ms"),
            parse_slo("error_rate < 1%"),
            parse_slo("time_per_output_token.p50 < 10ms"),
        ],
    )
    assert [c.passed for c in result.checks] == [True, False, True, False]
    assert result.checks[0].observed == pytest.approx(300, rel=1e-3)
    assert result.checks[3].observed is None  # nothing measured: an SLO cannot pass on no data
    assert not result.passed


@pytest.mark.parametrize(
    ("expr", "share"),
    [
        ("time_to_first_output.p95 < 2s", 0.05),
        ("time_to_first_output.p999 <= 2s", 0.001),
        ("time_to_first_output < 2s", 0.5),  # no statistic: p50
        ("time_to_first_output.max < 2s", 0.0),
        ("error_rate < 1%", 0.01),
        ("time_to_first_output.mean < 2s", None),
        ("time_to_first_output.p95 > 2s", None),  # a lower bound
        ("turns_per_s > 3", None),
    ],
)
def test_the_share_of_samples_a_bound_lets_break_it(expr: str, share: float | None) -> None:
    got = parse_slo(expr).breach_share
    assert got == pytest.approx(share) if share is not None else got is None
