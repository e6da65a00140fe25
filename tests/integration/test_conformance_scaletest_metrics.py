"""Protocol §9.6 over the wire: a scrape of ``chatload run --prometheus`` during a real run
against the simulator parses with prometheus_client's parser and reads as Coder's scaletest
page: ``run_id`` (report.json's ``run.run_id``) on every ``coderd_scaletest_*`` series,
``phase`` initial|follow_up on exactly the four histograms Coder labels so, Coder's buckets,
and Coder's five failure stages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from loadtest.protocol.scaletest import FAILURE_STAGES, HISTOGRAMS
from loadtest.pubsub.servers import free_port

SCENARIO = """\
name = "scaletest-metrics"
[load]
users = 3
spawn_rate = 6
run_time = "5s"
[chat]
turns = 100
think_time = "0.1s"
[sim.config]
ttft_ms = 20
parts_per_turn = 4
part_gap_ms = 5
rate_limit_per_minute = -1
"""
PHASED = {
    "coderd_scaletest_chat_message_latency_seconds",
    "coderd_scaletest_chat_time_to_running_seconds",
    "coderd_scaletest_chat_time_to_first_output_seconds",
    "coderd_scaletest_chat_time_to_terminal_status_seconds",
}
TTFT = "coderd_scaletest_chat_time_to_first_output_seconds"


def scrape(url: str) -> dict[str, list[Sample]]:
    """The page's samples by family, parsed by prometheus_client's own parser."""
    text = httpx.get(url, timeout=5).text
    return {f.name: list(f.samples) for f in text_string_to_metric_families(text)}


def count(page: dict[str, list[Sample]], phase: str) -> float:
    return sum(
        s.value
        for s in page.get(TTFT, [])
        if s.name == TTFT + "_count" and s.labels["phase"] == phase
    )


def test_a_scrape_during_a_run_reads_as_coders_scaletest_page(tmp_path: Path) -> None:
    path = tmp_path / "scenario.toml"
    path.write_text(SCENARIO)
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    out = tmp_path / "out"
    run = subprocess.Popen(
        [sys.executable, "-m", "loadtest.cli", "run", "--quiet", "--scenario", str(path),
         "--prometheus", f"127.0.0.1:{port}", "--report-dir", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )  # fmt: skip
    try:
        page: dict[str, list[Sample]] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until both phases have turns behind them
            try:
                page = scrape(url)
            except httpx.HTTPError:
                page = {}
            if count(page, "initial") > 0 and count(page, "follow_up") > 0:
                break
            time.sleep(0.2)
        stdout, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, stdout[-2000:] + stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    run_id = report["run"]["run_id"]
    assert run_id and count(page, "initial") > 0 and count(page, "follow_up") > 0

    scaletest = {name: samples for name, samples in page.items() if name.startswith("coderd_")}
    assert {h.name for h in HISTOGRAMS} <= scaletest.keys()
    for name, samples in scaletest.items():
        for sample in samples:
            assert sample.labels["run_id"] == run_id, sample
            if name in PHASED:
                assert sample.labels["phase"] in ("initial", "follow_up"), sample
            else:
                assert "phase" not in sample.labels, sample
    for spec in HISTOGRAMS:
        for phase in ("initial", "follow_up") if spec.phased else (None,):
            les = [
                float(s.labels["le"])
                for s in scaletest[spec.name]
                if s.name.endswith("_bucket") and s.labels.get("phase") == phase
            ]
            if spec.name == "coderd_scaletest_chat_message_latency_seconds" and phase == "initial":
                assert les == []  # a chat's first turn is its create, as in run.go
                continue
            assert les == [*spec.buckets, float("inf")], (spec.name, phase)
    stages = [s.labels["stage"] for s in scaletest["coderd_scaletest_chat_stage_failures"]]
    assert sorted(stages) == sorted(FAILURE_STAGES)
    # The scrape's first turns are the report's, as far as the run had got.
    assert count(page, "initial") <= report["latency_ms"]["time_to_first_output_initial"]["count"]
