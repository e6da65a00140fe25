"""A report's files in a directory, each written atomically (readers never see half a file)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from loadtest.report.atomic import write_atomic
from loadtest.report.html import render_html
from loadtest.report.markdown import render_markdown
from loadtest.report.model import Report
from loadtest.report.timeseries_csv import render_timeseries_csv

Renderer = Callable[[Report], str]


def write_renderings(
    report: Report, directory: Path, html: bool = True, csv: bool = True
) -> list[Path]:
    """``report.html``, ``summary.md`` and ``timeseries.csv`` (each optional but the summary)."""
    renderers: dict[str, Renderer] = {"summary.md": render_markdown}
    if html:
        renderers["report.html"] = render_html
    if csv:
        renderers["timeseries.csv"] = render_timeseries_csv
    paths = []
    for name, render in renderers.items():
        path = directory / name
        write_atomic(path, render(report).encode())
        paths.append(path)
    return paths


def write_json(report: Report, path: Path) -> None:
    write_atomic(path, report.to_json())


def write_report_files(
    report: Report, directory: Path, html: bool = True, csv: bool = True
) -> list[Path]:
    """``report.json`` and its renderings; returns the paths written."""
    path = directory / "report.json"
    write_json(report, path)
    return [path, *write_renderings(report, directory, html=html, csv=csv)]
