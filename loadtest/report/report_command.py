"""``chatload report REPORT_JSON [--html FILE] [--markdown FILE]``: re-render a report.json."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loadtest.report.atomic import write_atomic
from loadtest.report.files import Renderer, write_renderings
from loadtest.report.html import render_html
from loadtest.report.load import ReportFileError, read_report
from loadtest.report.markdown import render_markdown


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Without --html or --markdown, writes report.html, summary.md and timeseries.csv "
        "beside REPORT_JSON; with either, writes only the files named. Exit 2 when "
        "REPORT_JSON cannot be read as a chatload report."
    )
    parser.add_argument("report_json", metavar="REPORT_JSON", type=Path, help="a report.json")
    parser.add_argument("--html", metavar="FILE", type=Path, help="write the HTML report here")
    parser.add_argument(
        "--markdown", metavar="FILE", type=Path, help="write the markdown summary here"
    )


def main(args: argparse.Namespace) -> int:
    try:
        report = read_report(args.report_json)
    except ReportFileError as exc:
        print(f"chatload report: {exc}", file=sys.stderr)
        return 2
    chosen: dict[Path, Renderer] = {
        path: render
        for path, render in ((args.html, render_html), (args.markdown, render_markdown))
        if path is not None
    }
    try:
        if chosen:
            for path, render in chosen.items():
                write_atomic(path, render(report).encode())
            written = list(chosen)
        else:
            written = write_renderings(report, args.report_json.parent)
    except OSError as exc:
        print(f"chatload report: {exc.filename}: cannot write it ({exc.strerror})", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0
