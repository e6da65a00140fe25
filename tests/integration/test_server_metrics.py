"""``chatload run --server-metrics`` against the simulator: ``server_metrics`` in its report
equals the simulator's own stage figures, and an endpoint that cannot be read is a warning."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadtest.runner.processes import SimProcess

#: Retries (backoff scaled to 10, 20 ms), a gate of 1 agent for 3 users (capacity waits),
#: short turns: a run of 2 s.
CONFIG = {
    "ttft_ms": {"dist": "uniform", "min": 20, "max": 60},
    "parts_per_turn": 4,
    "part_gap_ms": {"dist": "constant", "value": 5},
    "error_rate": 0.5,
    "error_retries": 2,
    "time_scale": 0.01,
    "agent_limit": 1,
    "rate_limit_per_minute": -1,
}
SCENARIO = """name = "server-metrics"
[load]
users = 3
spawn_rate = 3
run_time = "2s"
stop_timeout = 20
[chat]
turns = 2
think_time = [0.02, 0.05]
turn_timeout = 30
"""


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def sim() -> Any:
    token = secrets.token_urlsafe(18)
    process = SimProcess.start("d", token, CONFIG)
    yield process, token
    process.stop()


def test_server_metrics_equal_the_simulators_own_figures(sim: Any, tmp_path: Path) -> None:
    process, token = sim
    scenario = tmp_path / "server-metrics.toml"
    scenario.write_text(SCENARIO)
    # A second endpoint nobody serves, with credentials that must never be shown.
    unreachable = f"http://scraper:hunter2@127.0.0.1:{closed_port()}/metrics?token=hunter2"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "loadtest.cli", "run", "--quiet"),
            *("--host", process.url, "--scenario", str(scenario)),
            *("--report-dir", str(tmp_path / "out")),
            *("--server-metrics", f"{process.url}/metrics", "--server-metrics", unreachable),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CODER_SESSION_TOKEN": token},
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    text = (tmp_path / "out" / "report.json").read_text()
    report = json.loads(text)
    section = report["server_metrics"]
    own = httpx.get(f"{process.url}/__sim/metrics", timeout=10).json()

    # Exact counts, sums within float rounding: a scrape's deltas are what the sim measured.
    assert set(section["stages"]) == set(own["stages"])
    for name, figures in own["stages"].items():
        assert section["stages"][name]["count"] == figures["count"], name
        assert section["stages"][name]["sum_s"] == pytest.approx(figures["sum_s"], rel=1e-9)
    assert {"queue_wait", "capacity_wait", "time_to_first_token", "chat_turn"} <= set(own["stages"])
    assert section["ttft"]["count"] == own["ttft"]["count"]
    assert section["ttft"]["sum_s"] == pytest.approx(own["ttft"]["sum_s"], rel=1e-9)
    assert section["retries"] == own["retries"] and own["retries"]["overloaded"] > 0
    assert section["stages"]["chat_turn"]["count"] == report["counts"]["turns_started"]
    assert section["agents"]["active"]["end"] == own["agents"]["active"] == 0

    compare = section["client_vs_server_ttft"]
    assert compare["client_p50_ms"] == report["latency_ms"]["time_to_first_output"]["p50"]
    assert compare["server_mean_ms"] == pytest.approx(section["ttft"]["mean_ms"])
    assert compare["difference_mean_ms"] is not None

    # The unreadable endpoint: a warning and an error, its credentials nowhere.
    assert "unreachable" in section["error"]
    assert "--server-metrics" in done.stderr and "warning" in done.stderr
    assert "hunter2" not in text + done.stderr + done.stdout
    assert "What the server saw" in (tmp_path / "out" / "report.html").read_text()
