"""A private Prometheus on 127.0.0.1 for the tests: its config written here, its data in a
temporary directory, scraping every second, stopped by handle; and PromQL over its HTTP API.

The binary is Debian's ``prometheus`` (the Makefile's ``servers`` target installs it); a
bare pytest without it skips.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadtest.child import spawn
from loadtest.pubsub.servers import PrivateServer, stop_process
from loadtest.runner.processes import SimProcess, free_port

#: How often it scrapes: short, so a run of a few seconds has several samples.
SCRAPE_S = 1.0
START_TIMEOUT_S = 60.0


class PromQLError(AssertionError):
    """Prometheus refused a query (it does not parse, or cannot be evaluated)."""


def prometheus_or_skip() -> str:
    found = shutil.which("prometheus")
    if found is None:
        pytest.skip(
            "prometheus is not installed: make test installs it (apt-get install prometheus)"
        )
    return found


def promtool_or_skip() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed: make test installs it (apt-get install prometheus)")
    return found


class Prometheus(PrivateServer):
    """Prometheus scraping ``jobs`` (job name -> ``host:port``, path ``/metrics``)."""

    def __init__(self, jobs: dict[str, str]) -> None:
        super().__init__()
        self.jobs = jobs
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def config(self) -> str:
        lines = [
            "global:",
            f"  scrape_interval: {SCRAPE_S:g}s",
            f"  scrape_timeout: {SCRAPE_S:g}s",
            f"  evaluation_interval: {SCRAPE_S:g}s",
            "scrape_configs:",
        ]
        for job, target in self.jobs.items():
            lines += [
                f"  - job_name: {job}",
                "    static_configs:",
                f"      - targets: ['{target}']",
            ]
        return "\n".join(lines) + "\n"

    def start(self) -> str:
        binary = prometheus_or_skip()
        config, log = self.root / "prometheus.yml", self.root / "prometheus.log"
        config.write_text(self.config())
        command = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.root / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        with log.open("ab") as out:
            self.process = spawn(command, stdout=out, stderr=subprocess.STDOUT, cwd=self.root)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited {self.process.returncode}: {self.log()}")
            try:
                if self.http.get("/-/ready").status_code == 200:
                    return self.url
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"prometheus was not ready in {START_TIMEOUT_S:.0f} s: {self.log()}"
                )
            time.sleep(0.1)

    def log(self) -> str:
        try:
            lines = (self.root / "prometheus.log").read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-5:]) or "(no output)"

    def _api(self, path: str, params: dict[str, Any]) -> Any:
        reply = self.http.get(path, params=params)
        body = reply.json()
        if body.get("status") != "success":
            raise PromQLError(
                f"{params.get('query')!r}: {body.get('errorType')}: {body.get('error')}"
            )
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query: ``[{"metric": {...}, "value": [t, "v"]}, ...]``."""
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        result: list[dict[str, Any]] = self._api("/api/v1/query", params)["result"]
        return result

    def value(self, expr: str, at: float) -> float:
        """The one value of a query that gives one series (NaN when it gives none)."""
        result = self.query(expr, at)
        assert len(result) <= 1, f"{expr}: {len(result)} series"
        return float(result[0]["value"][1]) if result else math.nan

    def by(self, expr: str, label: str, at: float) -> dict[str, float]:
        return {
            row["metric"].get(label, ""): float(row["value"][1]) for row in self.query(expr, at)
        }

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """A range query: ``[{"metric": {...}, "values": [[t, "v"], ...]}, ...]``."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        result: list[dict[str, Any]] = self._api("/api/v1/query_range", params)["result"]
        return result

    def scrapes(self, job: str) -> list[tuple[float, bool]]:
        """Every scrape of ``job`` in the last hour: (time, whether it succeeded)."""
        rows = self.query(f'up{{job="{job}"}}[1h]')
        return [(float(t), v == "1") for row in rows for t, v in row["values"]]

    def stop(self) -> None:
        self.http.close()
        stop_process(self.process, signal.SIGTERM)
        super().stop()


#: A run with something in every figure a dashboard shows: follow-up turns (phases), provider
#: errors that exhaust their retries (retries by kind, stage failures), dropped streams
#: (reconnects) and duplicated deltas (integrity breaks).
SIM_CONFIG = {
    # Over several of Coder's TTFT buckets (0.1, 0.16, 0.26, 0.41, 0.66 s, ...).
    "ttft_ms": {"dist": "uniform", "min": 60, "max": 600},
    "parts_per_turn": 6,
    "part_gap_ms": {"dist": "constant", "value": 5},
    "error_rate": 0.15,
    "error_retries": 25,
    "time_scale": 0.0005,
    "rate_limit_per_minute": -1,
    # A run holds ~100 turns (fewer on a busy machine); 5 % drops left none in one CI run in
    # ~80 (p ~ 1 %). At 20 % of the ~85 % that do not fail, no drop in 40 turns is p < 1e-3;
    # duplicates (per part, 5 of a turn's 6 can be) expect 12 in 40 turns (at 2 %: 4).
    "faults": {"drop_rate": 0.2, "part_duplicate_rate": 0.06},
}
SCENARIO = """name = "prometheus-server"
[load]
users = 6
spawn_rate = 12
run_time = "8s"
stop_timeout = 20
[chat]
turns = 3
think_time = "0.1s"
turn_timeout = 30
"""
#: How long the run keeps serving its final figures: several scrapes.
WAIT_S = 4


@dataclass
class ScrapedRun:
    """A ``chatload run --prometheus`` against the simulator, both scraped by Prometheus."""

    prometheus: Prometheus
    report: dict[str, Any]
    #: chatload's and the simulator's /metrics text, as last read.
    exposition: str
    sim_exposition: str
    #: The first and the last successful scrape of the run (Unix seconds).
    first: float
    last: float


def scraped_run(tmp: Path) -> Iterator[ScrapedRun]:
    """Start the simulator, Prometheus scraping it and the run's /metrics, then the run;
    yield once the run has ended (its final figures scraped)."""
    prometheus_or_skip()
    token = secrets.token_urlsafe(18)
    sim = SimProcess.start("d", token, SIM_CONFIG)
    port = free_port()
    sim_target = sim.url.removeprefix("http://")
    prometheus = Prometheus({"chatload": f"127.0.0.1:{port}", "coder": sim_target})
    try:
        prometheus.start()
        # Prometheus applies its targets a few seconds after it starts: wait for its first
        # try at the run's address (refused, for now), so it scrapes the run from its start.
        deadline = time.monotonic() + START_TIMEOUT_S
        while not prometheus.scrapes("chatload"):
            assert time.monotonic() < deadline, f"Prometheus never scraped: {prometheus.log()}"
            time.sleep(0.2)
        scenario = tmp / "scenario.toml"
        scenario.write_text(SCENARIO)
        out = tmp / "out"
        run = subprocess.Popen(
            [sys.executable, "-m", "loadtest.cli", "run", "--quiet", "--host", sim.url,
             "--scenario", str(scenario), "--report-dir", str(out),
             "--prometheus", f"127.0.0.1:{port}", "--prometheus-wait", f"{WAIT_S}s"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "CODER_SESSION_TOKEN": token},
        )  # fmt: skip
        exposition = ""
        try:
            deadline = time.monotonic() + 120
            while run.poll() is None and time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    exposition = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                time.sleep(0.5)
            _, stderr = run.communicate(timeout=30)
        finally:
            if run.poll() is None:
                run.kill()
                run.communicate(timeout=10)
        assert run.returncode in (0, 1), stderr[-3000:]  # 1: turns failed, as the sim was told
        report = json.loads((out / "report.json").read_text())
        sim_exposition = httpx.get(f"{sim.url}/metrics", timeout=5).text
        scraped = [t for t, ok in prometheus.scrapes("chatload") if ok]
        assert len(scraped) >= 3, (
            f"Prometheus scraped the run {len(scraped)} times: {prometheus.log()}"
        )
        yield ScrapedRun(prometheus, report, exposition, sim_exposition, scraped[0], scraped[-1])
    finally:
        prometheus.stop()
        sim.stop()
