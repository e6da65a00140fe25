"""Locust's own files beside chatload's: CSVs with every request as it stands at the end, and
the HTML page."""

from __future__ import annotations

import csv
from pathlib import Path

from locust.env import Environment

from loadtest.report.locust_files import write_locust_csvs, write_locust_html


def environment() -> Environment:
    env = Environment()
    env.create_local_runner()
    for ms in (10, 20, 30):
        env.stats.log_request("POST", "create_chat", ms, 100)
    env.stats.log_error("POST", "create_chat", "HTTP 502")
    return env


def test_the_csvs_hold_every_request_and_failure(tmp_path: Path) -> None:
    env = environment()
    write_locust_csvs(env, tmp_path / "locust")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["locust_exceptions.csv", "locust_failures.csv", "locust_stats.csv"]
    with open(tmp_path / "locust_stats.csv") as file:
        rows = {row["Name"]: row for row in csv.DictReader(file)}
    assert rows["create_chat"]["Request Count"] == "3"
    assert rows["create_chat"]["Failure Count"] == "1"
    with open(tmp_path / "locust_failures.csv") as file:
        (failure,) = list(csv.DictReader(file))
    assert failure["Name"] == "create_chat" and "502" in failure["Error"]


def test_the_html_page_is_written(tmp_path: Path) -> None:
    write_locust_html(environment(), tmp_path / "locust.html")
    page = (tmp_path / "locust.html").read_text()
    assert page.lstrip().lower().startswith("<!doctype html") and "create_chat" in page
