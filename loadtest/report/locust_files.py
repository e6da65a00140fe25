"""Locust's own files beside chatload's: its CSVs rewritten whole at the end, its HTML page.

Locust's CSV writer samples once a second, so its files miss whatever ended after the last
sample (turns finished in the stop timeout among them); at the end they are written again
from the stats as they stand.
"""

from __future__ import annotations

import csv
from pathlib import Path

from locust.env import Environment
from locust.html import get_html_report
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

from loadtest.report.atomic import write_atomic


def write_locust_csvs(environment: Environment, base: Path) -> None:
    """``<base>_stats.csv``, ``_failures.csv`` and ``_exceptions.csv``, whole."""
    final = StatsCSV(environment, PERCENTILES_TO_REPORT)
    for suffix, write in (
        ("_stats.csv", final.requests_csv),
        ("_failures.csv", final.failures_csv),
        ("_exceptions.csv", final.exceptions_csv),
    ):
        with open(f"{base}{suffix}", "w", newline="") as file:
            write(csv.writer(file))


def write_locust_html(environment: Environment, path: Path) -> None:
    write_atomic(path, get_html_report(environment, show_download_link=False).encode())
