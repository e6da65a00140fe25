"""What every writer leads with: the verdict (the exit code's) and the headline figures."""

from __future__ import annotations

from loadtest.core.slo import SloCheck, SloResult
from loadtest.report.headline import headline, label, observed, passed, verdict
from loadtest.report.model import Report


def with_slo(report: Report, *checks: SloCheck) -> Report:
    result = SloResult(passed=all(c.passed for c in checks), checks=list(checks))
    return report.model_copy(update={"slo": result})


def with_failed(report: Report, failed: int) -> Report:
    counts = report.counts.model_copy(update={"turns_failed": failed})
    return report.model_copy(update={"counts": counts, "slo": SloResult()})


def test_without_slos_a_failed_turn_fails_the_run(report: Report) -> None:
    assert verdict(with_failed(report, 0)) == "PASS"
    assert verdict(with_failed(report, 1)) == "FAIL" and not passed(with_failed(report, 1))


def test_with_slos_the_checks_decide(report: Report) -> None:
    failing = with_failed(report, 3)
    held = SloCheck(expr="error_rate < 50%", observed=0.25, passed=True)
    broken = SloCheck(expr="time_to_first_output.p95 < 10ms", observed=13.0, passed=False)
    assert verdict(with_slo(failing, held)) == "PASS"
    assert verdict(with_slo(failing, held, broken)) == "FAIL"


def test_an_slo_check_shows_what_it_saw_in_its_figures_unit() -> None:
    assert observed(SloCheck(expr="time_to_first_output.p95 < 2s", observed=13.0, passed=True)) == (
        "13.0 ms"
    )
    assert observed(SloCheck(expr=" error_rate < 1%", observed=0.25, passed=False)) == "25.00 %"
    assert observed(SloCheck(expr="turns_per_s > 1", observed=None, passed=False)) == "n/a"


def test_a_figure_with_an_alias_shows_both() -> None:
    assert label("time_to_first_output") == "time_to_first_output (TTFT)"
    assert label("turns_failed") == "turns_failed"


def test_the_headline_groups_hold_the_reports_figures(report: Report) -> None:
    groups = dict(headline(report))
    assert list(groups) == ["Turns", "Rates", "Latency", "Integrity"]
    turns = dict(groups["Turns"])
    assert turns["turns started"] == f"{report.counts.turns_started:,}"
    assert turns["turns failed"] == f"{report.counts.turns_failed:,}"
    rates = dict(groups["Rates"])
    assert rates["error rate"] == f"{report.figure('error_rate') * 100:.2f} %"  # type: ignore[operator]
    latency = dict(groups["Latency"])
    assert list(latency)[:3] == ["TTFT p50", "TTFT p95", "TTFT p99"]
    assert latency["TTFT p95"].endswith(" ms")
    assert len(groups["Integrity"]) == len(report.integrity.model_dump())
