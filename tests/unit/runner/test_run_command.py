"""``chatload run``: the exit code a CI job reads, the run's description in its report, and a
usage error found before anything starts."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

import pytest

from loadtest.client.preflight import TargetInfo
from loadtest.core.measurement import Measurement
from loadtest.core.slo import SloCheck, SloResult, parse_slo
from loadtest.protocol.eras import Era
from loadtest.report.model import Report
from loadtest.runner.locust_run import RunResult
from loadtest.runner.plan import (
    EXIT_FAILED,
    EXIT_INCOMPLETE,
    EXIT_PASSED,
    EXIT_USAGE,
)
from loadtest.runner.run_command import configure, exit_code, main, run_info
from loadtest.scenario import Scenario
from tests.unit.report.reports import sample_report


def with_(
    report: Report, *, complete: bool = True, failed: int = 0, slo: bool | None = None
) -> Report:
    checks = [] if slo is None else [SloCheck(expr="error_rate < 1%", observed=0.0, passed=slo)]
    return report.model_copy(
        update={
            "run": report.run.model_copy(update={"complete": complete}),
            "counts": report.counts.model_copy(update={"turns_failed": failed}),
            "slo": SloResult(passed=slo is not False, checks=checks),
        }
    )


def test_the_exit_code() -> None:
    report = sample_report(frames=2)
    slos = [parse_slo("error_rate < 1%")]
    assert exit_code(with_(report), []) == EXIT_PASSED
    assert exit_code(with_(report, failed=1), []) == EXIT_FAILED
    assert exit_code(with_(report, failed=1, slo=True), slos) == EXIT_PASSED, "the SLOs decide"
    assert exit_code(with_(report, slo=False), slos) == EXIT_FAILED
    assert exit_code(with_(report, complete=False, slo=True), slos) == EXIT_INCOMPLETE


def result(counts: dict[str, int], reasons: list[str]) -> RunResult:
    now = datetime.now(UTC)
    environment: Any = None
    return RunResult(Measurement(counts=counts), reasons, now, now, 3.0, environment, run_id="r1")


def test_the_run_says_what_ran_against_what() -> None:
    scenario = Scenario.model_validate({"name": "smoke", "load": {"users": 4}})
    target = TargetInfo("http://coder", Era.A, "v2.31.0", [None], [True], era_from_stream=True)
    info = run_info(scenario, target, result({"streams_era_b": 3, "streams_era_a": 1}, []), 2.5)
    assert (info.scenario, info.duration_s, info.run_id, info.complete) == (
        "smoke",
        2.5,
        "r1",
        True,
    )
    assert info.target.era == "b", "the frames told B from A"
    assert info.load.users == 4
    lost = run_info(scenario, target, result({}, ["worker lost"]), 2.5)
    assert not lost.complete and lost.incomplete_reasons == ["worker lost"]
    assert lost.target.era == "a"


def test_a_usage_error_is_exit_2_before_anything_starts(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    configure(parser)
    assert main(parser.parse_args(["--server-metrics", "coder:2112/metrics"])) == EXIT_USAGE
    assert capsys.readouterr().err.startswith("chatload run: ")
