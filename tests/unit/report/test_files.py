"""A report's files: written whole, the optional ones left out when asked, JSON that round-trips."""

from __future__ import annotations

from pathlib import Path

from loadtest.report.files import write_report_files
from loadtest.report.html import render_html
from loadtest.report.model import Report


def test_report_files_are_written_and_round_trip(report: Report, tmp_path: Path) -> None:
    paths = write_report_files(report, tmp_path / "out")
    names = ["report.json", "summary.md", "report.html", "timeseries.csv"]
    assert paths == [tmp_path / "out" / name for name in names]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(names)
    again = Report.model_validate_json((tmp_path / "out" / "report.json").read_bytes())
    assert again == report
    assert (tmp_path / "out" / "report.html").read_text() == render_html(report)
    fewer = write_report_files(report, tmp_path / "less", html=False, csv=False)
    assert [p.name for p in fewer] == ["report.json", "summary.md"]
    assert sorted(p.name for p in (tmp_path / "less").iterdir()) == ["report.json", "summary.md"]
