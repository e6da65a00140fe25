"""summary.md: the verdict first, the SLO and headline tables, cells that cannot break a table."""

from __future__ import annotations

from loadtest.report.markdown import render_markdown
from loadtest.report.model import ErrorRow, Report
from tests.unit.report.reports import slo


def test_markdown_summary(report: Report) -> None:
    failing = render_markdown(slo(report, passed=False))
    title = failing.splitlines()[0]
    assert title.startswith("## ") and title.endswith("FAIL") and "smoke" in title
    assert render_markdown(slo(report, passed=True)).splitlines()[0].endswith("PASS")
    assert "| time_to_first_output.p95 &lt; 2000ms | 13.0 ms | PASS |" in failing
    assert "| error_rate &lt; 1% | 25.00 % | FAIL |" in failing
    assert f"| turns started | {report.counts.turns_started} |" in failing
    assert "| decode |" in failing and "| status_error | generic |" in failing
    # With no SLO, the verdict is the exit code's: a failed turn fails the run.
    assert report.counts.turns_failed and render_markdown(report).splitlines()[0].endswith("FAIL")


def test_markdown_cells_cannot_break_the_table(report: Report) -> None:
    row = ErrorRow(
        stage="create_chat",
        kind=None,
        provider=None,
        status_code=502,
        retryable=None,
        count=1,
        message="bad | gateway\nsecond line",
    )
    summary = render_markdown(report.model_copy(update={"errors": [row]}))
    line = next(line for line in summary.splitlines() if line.startswith("| create_chat"))
    assert line == "| create_chat |  | 502 | 1 | bad \\| gateway second line |"
