"""The report writers' shared fixtures: one real run's report, and its HTML page."""

from __future__ import annotations

import pytest

from loadtest.report.html import render_html
from loadtest.report.model import Report
from tests.unit.report.reports import sample_report


@pytest.fixture(scope="module")
def report() -> Report:
    return sample_report()


@pytest.fixture(scope="module")
def page(report: Report) -> str:
    return render_html(report)
