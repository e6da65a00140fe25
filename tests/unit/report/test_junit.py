"""``--junit``: each SLO check a test case, failures carrying the observed value."""

from __future__ import annotations

from xml.etree import ElementTree

from loadtest.core.recorder import Recorder
from loadtest.core.slo import SloCheck, SloResult
from loadtest.report.build import build_report
from loadtest.report.junit import render_junit
from tests.unit.samples import run_info


def test_each_slo_is_a_case_and_a_failure_carries_its_observed_value() -> None:
    report = build_report(Recorder().measurement(), run_info())
    report.slo = SloResult(
        passed=False,
        checks=[
            SloCheck(expr="time_to_first_output.p95 < 2s", observed=850.0, passed=True),
            SloCheck(expr="error_rate < 1%", observed=0.034, passed=False),
            SloCheck(expr="watch_lag.p99 < 1s", observed=None, passed=False),
        ],
    )
    root = ElementTree.fromstring(render_junit(report).encode())
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("tests") == "3" and suite.get("failures") == "1" and suite.get("errors") == "1"
    cases = suite.findall("testcase")
    assert [case.get("name") for case in cases] == [check.expr for check in report.slo.checks]
    assert not list(cases[0])  # passed: no child
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("message") == "observed 0.034"
    assert cases[2].find("error") is not None


def test_an_incomplete_run_is_a_failed_case_that_says_why() -> None:
    info = run_info()
    info.complete = False
    info.incomplete_reasons = ["worker 2 (host-b) lost"]
    report = build_report(Recorder().measurement(), info)
    root = ElementTree.fromstring(render_junit(report).encode())
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "1" and suite.get("failures") == "1"
    case = suite.find("testcase")
    assert case is not None and case.get("name") == "run complete"
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == "worker 2 (host-b) lost"
