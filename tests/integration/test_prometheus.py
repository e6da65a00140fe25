"""``chatload run --prometheus``: live figures under Coder's scaletest names while a run lasts,
in a distributed run the master's merged ones; the text parses with prometheus_client's own
parser and the counters rise towards the final report's counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadtest.pubsub.servers import free_port

SCENARIO = """\
name = "prometheus"
[load]
users = 4
spawn_rate = 8
run_time = "12s"
workers = {workers}
[chat]
turns = 100
think_time = "0.1s"
[sim.config]
ttft_ms = 20
parts_per_turn = 8
part_gap_ms = 5
rate_limit_per_minute = -1
"""


def scrape(url: str) -> dict[str, float]:
    """Every sample of a /metrics page by name (labels but the run's id joined in), parsed as
    Prometheus does."""
    text = httpx.get(url, timeout=5).text
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            shown = {k: v for k, v in sample.labels.items() if k != "run_id"}
            labels = ",".join(f"{k}={v}" for k, v in sorted(shown.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


@pytest.mark.parametrize(
    "workers",
    [0, pytest.param(2, marks=pytest.mark.slow)],  # workers: make test-all
)
def test_metrics_rise_during_the_run_and_match_the_report(tmp_path: Path, workers: int) -> None:
    path = tmp_path / "prometheus.toml"
    path.write_text(SCENARIO.format(workers=workers))
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    out = tmp_path / "out"
    run = subprocess.Popen(
        [sys.executable, "-m", "loadtest.cli", "run", "--quiet", "--scenario", str(path),
         "--prometheus", f"127.0.0.1:{port}", "--prometheus-wait", "5s",
         "--report-dir", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )  # fmt: skip
    try:
        first: dict[str, float] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the run serves and has turns behind it
            try:
                first = scrape(url)
            except httpx.HTTPError:
                first = {}
            if first.get("coderd_scaletest_chat_turns_completed_total", 0) > 0:
                break
            time.sleep(0.2)
        # Workers report to the master every few seconds: wait (bounded) for the next one;
        # --prometheus-wait keeps the page up for a slow one after the run's end.
        second = first
        deadline = time.monotonic() + 30
        completed = "coderd_scaletest_chat_turns_completed_total"
        while second[completed] <= first[completed] and time.monotonic() < deadline:
            time.sleep(0.5)
            second = scrape(url)
        stdout, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, stdout[-2000:] + stderr[-2000:]
    counts = json.loads((out / "report.json").read_text())["counts"]
    assert 0 < first[completed] < second[completed] <= counts["turns_completed"]
    assert first["chatload_events_total"] < second["chatload_events_total"] <= counts["events"]
    ttft = "coderd_scaletest_chat_time_to_first_output_seconds_count{phase=%s}"
    assert 0 < second[ttft % "initial"] + second[ttft % "follow_up"] <= counts["turns_completed"]
    assert second["coderd_scaletest_active_chat_streams"] == 4  # one per user, all open
    assert second["coderd_scaletest_chat_terminal_status_total{status=error}"] == 0


def test_an_address_it_cannot_serve_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.cli", "run", "--prometheus", "nonsense"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "expected HOST:PORT" in done.stderr
