"""``--junit FILE``: a run's SLO checks as JUnit XML, the verdict format every CI system reads.

One test suite, ``chatload``; one test case per SLO check, named by its expression; a check
that failed carries a ``<failure>`` with the observed value, one with nothing measured an
``<error>``. An incomplete run adds a failed case ``run complete`` naming why. The layout is
the de facto JUnit schema that Jenkins, GitLab and GitHub Actions parse (testsuites >
testsuite > testcase > failure/error, counts as attributes).
"""

from __future__ import annotations

from xml.etree import ElementTree

from loadtest.report.model import Report

SUITE = "chatload"


def render_junit(report: Report) -> str:
    run = report.run
    suites = ElementTree.Element("testsuites", name=SUITE)
    suite = ElementTree.SubElement(
        suites,
        "testsuite",
        name=f"{SUITE}: {run.scenario}",
        timestamp=run.started_at.isoformat(),
        time=f"{run.duration_s:.3f}",
        hostname=run.target.url,
    )
    failures = errors = 0
    for check in report.slo.checks:
        case = ElementTree.SubElement(suite, "testcase", classname=f"{SUITE}.slo", name=check.expr)
        if check.passed:
            continue
        if check.observed is None:
            errors += 1
            element = ElementTree.SubElement(
                case, "error", message="nothing measured", type="SloNoData"
            )
            element.text = f"{check.expr}: the run measured no value for this figure"
            continue
        failures += 1
        message = f"observed {check.observed:g}"
        element = ElementTree.SubElement(case, "failure", message=message, type="SloFailed")
        element.text = f"{check.expr}: {message}"
    cases = len(report.slo.checks)
    if not run.complete:
        cases += 1
        failures += 1
        case = ElementTree.SubElement(
            suite, "testcase", classname=f"{SUITE}.run", name="run complete"
        )
        why = "; ".join(run.incomplete_reasons) or "incomplete"
        element = ElementTree.SubElement(case, "failure", message=why, type="RunIncomplete")
        element.text = why
    for element in (suite, suites):
        element.set("tests", str(cases))
        element.set("failures", str(failures))
        element.set("errors", str(errors))
    ElementTree.indent(suites)
    body = ElementTree.tostring(suites, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
