"""``chatload run --web``: Locust's web UI, in headless Chromium during a run, shows the
chatload tab with the run's live figures (and a screenshot of it is kept).

The browser test is slow (Chromium may first have to be installed): ``make test-all``. Without
a browser, ``make test`` checks that the UI's page and its poll carry the tab and the figures.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from loadtest.pubsub.servers import free_port
from tests.integration.browser import browse, colours, png_rows

SCENARIO = """\
name = "web"
[load]
users = 4
spawn_rate = 8
run_time = "60s"
stop_timeout = 5
[chat]
turns = 100
think_time = "0.1s"
[sim.config]
ttft_ms = 20
parts_per_turn = 8
part_gap_ms = 5
rate_limit_per_minute = -1
"""


def start_run(tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    """``chatload run --web`` against the simulator; (the process, the UI's base URL)."""
    path = tmp_path / "web.toml"
    path.write_text(SCENARIO)
    port = free_port()
    run = subprocess.Popen(
        [sys.executable, "-m", "loadtest.cli", "run", "--quiet", "--scenario", str(path),
         "--web", f"127.0.0.1:{port}", "--report-dir", str(tmp_path / "out")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return run, f"http://127.0.0.1:{port}"


def wait_for_turns(base: str) -> dict[str, str]:
    """The tab's rows, once they show completed turns (within 60 s)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            stats = httpx.get(f"{base}/stats/requests", timeout=5).json()
        except httpx.HTTPError:
            continue
        rows = {r["figure"]: r["value"] for r in stats["extended_stats"][0]["data"]}
        if re.search(r"[1-9]\d* completed", rows["turns"]):
            return rows
    raise AssertionError("the run served no completed turns within 60 s")


def stop(run: subprocess.Popen[str]) -> str:
    """As Ctrl-C: the run drains and writes its report; its stderr."""
    run.terminate()
    _, stderr = run.communicate(timeout=60)
    return stderr


def test_the_ui_serves_the_tab_and_its_figures(tmp_path: Path) -> None:
    run, base = start_run(tmp_path)
    try:
        rows = wait_for_turns(base)
        # Locust renders its page (it parses sys.argv there: chatload's flags must not reach it).
        page = httpx.get(f"{base}/?tab=chatload", timeout=10)
        # Stop pressed in the UI ends the run early, its report written, marked incomplete.
        httpx.post(f"{base}/stop", timeout=30)
        _, stderr = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert page.status_code == 200
    assert '"extended_tabs": [{"key": "chatload", "title": "chatload"}]' in page.text
    assert re.fullmatch(
        r"p50 \d+ · p95 \d+ · p99 \d+ ms \(\d+ turns\)", rows["time to first output"]
    )
    assert rows["retries by kind"] == "none" and rows["decode errors"] == "0"
    assert run.returncode == 4, stderr[-2000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["run"]["incomplete_reasons"] == ["stopped from Locust's web UI"]
    assert report["counts"]["turns_completed"] > 0


@pytest.mark.slow
def test_the_chatload_tab_shows_the_live_figures(chromium: str, tmp_path: Path) -> None:
    run, base = start_run(tmp_path)
    try:
        wait_for_turns(base)
        page = f"{base}/?tab=chatload"
        dom = browse(chromium, tmp_path / "p1", "--virtual-time-budget=6000", "--dump-dom", page)
        shot = tmp_path / "chatload-tab.png"
        browse(
            chromium,
            tmp_path / "p2",
            "--virtual-time-budget=6000",
            "--window-size=1400,900",
            f"--screenshot={shot}",
            page,
        )
    finally:
        stderr = stop(run)
    text = re.sub(r"<[^>]+>", " ", dom.stdout)
    # The tab is there and selected, and its table holds the live figures.
    assert re.search(r'aria-selected="true">(?:<[^>]+>)*chatload<', dom.stdout), dom.stdout[-3000:]
    for figure in ("time to first output", "time to first kept output", "events /s",
                   "integrity breaks", "retries by kind"):  # fmt: skip
        assert figure in text, figure
    assert re.search(r"time to first output\s+p50 \d+ · p95 \d+ · p99 \d+ ms \(\d+ turns\)", text)
    assert re.search(r"events /s\s+[\d,]+\.\d\s+last \d+\.\d s", text)
    assert re.search(r"\d+ started, \d+ completed, 0 failed", text)
    # The screenshot is of a page, not a blank one; kept beside the run's report.
    width, _, rows = png_rows(shot.read_bytes())
    assert len(colours(rows, len(rows[0]) // width)) > 50
    shutil.copy(shot, tmp_path / "out" / shot.name)
    assert run.returncode == 4, stderr[-2000:]
