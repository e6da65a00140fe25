"""Scenario files, flag overrides, load shapes and SLO expressions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from loadtest.core.recorder import Recorder
from loadtest.core.slo import SloError, evaluate, parse_slo, per_turn_bounds
from loadtest.core.tracker import TurnTracker
from loadtest.report.model import Load, RunInfo, Target, build_report
from loadtest.scenario import ScenarioError, load_scenario, parse_duration
from tests.unit.events import MS, message, part, status

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90.0), ("90s", 90.0), ("2m", 120.0), ("1h30m", 5400.0), ("250ms", 0.25), ("1.5", 1.5)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "ten", "5x", "1m junk"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(bad)


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_scenarios_load(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    for expr in scenario.slo.checks:
        parse_slo(expr)


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[load]\nusers = 3\nrun_time = "1m"\n[chat]\nturns = 2\n')
    scenario = load_scenario(path, {"load": {"users": 9}, "chat": {}})
    assert (scenario.load.users, scenario.load.run_time, scenario.chat.turns) == (9, 60.0, 2)


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("[load]\nusres = 3\n", "load.usres: Extra inputs are not permitted"),
        ("[load]\nusers = -1\n", "load.users"),
        ("[chat]\nthink_time = [3, 1]\n", "chat.think_time"),
        ("[load]\nmode = 'open'\n", "arrival_rate"),
        ("[bogus]\nx = 1\n", "bogus"),
        ("[load\n", "not valid TOML"),
    ],
)
def test_bad_scenario_names_the_key(tmp_path: Path, toml: str, named: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ScenarioError, match=r"bad\.toml") as info:
        load_scenario(path)
    assert named in str(info.value)


def test_missing_scenario_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "nope.toml")


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
    report = build_report(recorder.snapshot(), run)
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
