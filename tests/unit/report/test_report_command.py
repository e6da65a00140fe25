"""``chatload report``: re-renders beside the JSON or where told, and a bad file is exit 2
with one line naming it, writing nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.report.files import write_json
from loadtest.report.html import render_html
from loadtest.report.markdown import render_markdown
from loadtest.report.model import Report
from loadtest.report.timeseries_csv import render_timeseries_csv
from tests.unit.report.reports import chatload


def test_report_command_renders_beside_the_json(report: Report, tmp_path: Path) -> None:
    source = tmp_path / "report.json"
    write_json(report, source)
    done = chatload("report", source)
    assert done.returncode == 0, done.stderr
    written = {tmp_path / n for n in ("report.html", "summary.md", "timeseries.csv")}
    assert {Path(line) for line in done.stdout.split()} == written
    assert (tmp_path / "report.html").read_text() == render_html(report)
    assert (tmp_path / "timeseries.csv").read_text() == render_timeseries_csv(report)

    only = tmp_path / "only"
    done = chatload("report", source, "--html", only / "x.html", "--markdown", only / "s.md")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in only.iterdir()) == ["s.md", "x.html"]
    assert (only / "s.md").read_text() == render_markdown(report)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a chatload report"),
        (b'{"schema_version": 2}', "schema_version 2"),
        (b'{"schema_version": 1, "run": {}}', "not a valid chatload report"),
    ],
)
def test_report_command_rejects_bad_input(
    tmp_path: Path, content: bytes | None, problem: str
) -> None:
    path = tmp_path / "report.json"
    if content is not None:
        path.write_bytes(content)
    done = chatload("report", path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and problem in lines[0], done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == (
        [] if content is None else ["report.json"]
    )
