"""``chatload run --shape storm`` against the simulator: Coder's ``scaletest chat`` load shape.

Every chat is created at once behind a barrier (the report says how close together), each
sends its next turn as its last ends, the run ends when every chat has, and the report splits
first turns from follow-ups. With ``--turn-start-delay`` and two worker processes, no chat's
second message reaches the server before every chat's first turn has ended plus the delay:
the barrier holds across processes. Times are judged against what the simulator was told
to take (its TTFT), or the server's own clock, never against a fixed number of ms.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadtest.protocol.eras import PATHS, Era
from loadtest.protocol.models import ChatMessage, ChatMessagesResponse
from loadtest.runner.processes import SimProcess

RUN_TIMEOUT = 150
#: A run time the storm must not need: it ends when its chats have.
RUN_TIME_S = 120


def sim_with_ttft(ttft_ms: dict[str, Any]) -> tuple[SimProcess, str]:
    token = secrets.token_urlsafe(18)
    config = {
        "ttft_ms": ttft_ms,
        "parts_per_turn": 4,
        "part_gap_ms": {"dist": "constant", "value": 5},
        "rate_limit_per_minute": -1,
    }
    return SimProcess.start("d", token, config), token


def storm_run(
    sim: SimProcess, token: str, tmp_path: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``chatload run`` of a storm of chats that stay unarchived (their messages are read)."""
    path = tmp_path / "storm.toml"
    path.write_text(
        'name = "storm-itest"\n[load]\nshape = "storm"\nstop_timeout = 20\n'
        f'run_time = "{RUN_TIME_S}s"\n[chat]\nprompts = ["Reply with one short sentence."]\n'
        "turn_timeout = 30\narchive = false\n"
    )
    out = tmp_path / "report"
    command = [sys.executable, "-m", "loadtest.cli", "run", "--host", sim.url, f"--token={token}"]
    done = subprocess.run(
        [*command, "--scenario", str(path), "--report-dir", str(out), "--shape", "storm", *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env=os.environ.copy(),
        check=False,
    )
    report: dict[str, Any] = (
        json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
    )
    return done, report


def messages_by_chat(sim: SimProcess, token: str) -> list[list[ChatMessage]]:
    """Every chat's committed messages, as the server dated them."""
    paths = PATHS[Era.D]
    with httpx.Client(base_url=sim.url, headers={"Coder-Session-Token": token}) as http:
        chats = http.get(paths.chats(), timeout=10).json()
        return [
            ChatMessagesResponse.model_validate(
                http.get(paths.messages(chat["id"]), params={"limit": "200"}, timeout=10).json()
            ).messages
            for chat in chats
        ]


def of_role(messages: list[ChatMessage], role: str) -> list[datetime]:
    """When the server committed each message of ``role``, oldest first (it lists the newest
    first)."""
    return sorted(m.created_at for m in messages if m.role == role)


def test_a_storm_creates_every_chat_together_and_splits_first_turns_from_follow_ups(
    tmp_path: Path,
) -> None:
    # A TTFT long enough that 8 creates released together land within it on a busy machine.
    chats, turns, ttft_ms = 8, 3, 1200
    sim, token = sim_with_ttft({"dist": "constant", "value": ttft_ms})
    try:
        done, report = storm_run(sim, token, tmp_path, "-u", str(chats), "--turns", str(turns))
        history = messages_by_chat(sim, token)
    finally:
        sim.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"storm: all {chats} chats ready; creating them now" in done.stderr
    # The run ended when its chats had, not at its run time.
    assert report["run"]["complete"] and report["run"]["duration_s"] < RUN_TIME_S / 2
    counts = report["counts"]
    assert counts["turns_started"] == counts["turns_completed"] == chats * turns
    # The server got every chat once, each with its turns, and every create before any first
    # turn could have answered: within one TTFT of each other.
    assert len(history) == chats and all(len(of_role(h, "user")) == turns for h in history)
    creates = [of_role(h, "user")[0] for h in history]
    assert max(creates) - min(creates) < timedelta(milliseconds=ttft_ms)
    # The report's own measure of it: every chat's first turn started within a TTFT of the
    # release, and its spread is reported.
    storm = report["storm"]
    assert storm["chats"] == chats and storm["turns"] == turns
    assert storm["follow_up_release_spread_ms"] is None  # no turn_start_delay: nothing held
    spread = storm["release_spread_ms"]
    assert spread["count"] == chats and 0 <= spread["min"] <= spread["max"] < ttft_ms
    assert report["latency_ms"]["storm_release_spread"] == spread
    # First turns apart from follow-ups: the creates and the posts, each turn's TTFT at least
    # what the simulator was told to take.
    initial, follow_up = report["phases"]["initial"], report["phases"]["follow_up"]
    assert initial["message_latency"]["count"] == chats
    assert follow_up["message_latency"]["count"] == chats * (turns - 1)
    ttft = report["latency_ms"]["time_to_first_output"]["count"]
    assert (
        initial["time_to_first_output"]["count"] + follow_up["time_to_first_output"]["count"]
        == ttft
    )
    for phase in (initial, follow_up):
        assert phase["time_to_first_output"]["min"] >= ttft_ms
    assert "storm of 8 chats: first turns: 8 started" in done.stdout
    assert "by phase (ms, p50 / p95)" in done.stdout


@pytest.mark.slow  # long: make test-all (make test stays under 10 minutes on 2 cores)
def test_the_follow_up_barrier_holds_across_worker_processes(tmp_path: Path) -> None:
    chats, delay_s = 6, 1.0
    # First turns end at different times, so that one process's chats are done long before
    # the other's: a barrier held per process would release them too early.
    sim, token = sim_with_ttft({"dist": "uniform", "min": 100, "max": 1500})
    try:
        done, report = storm_run(
            sim,
            token,
            tmp_path,
            "-u",
            str(chats),
            "--turns",
            "2",
            "--turn-start-delay",
            f"{delay_s}s",
            "--workers",
            "2",
        )
        history = messages_by_chat(sim, token)
    finally:
        sim.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    assert report["run"]["workers"] == 2 and report["run"]["complete"]
    assert len(history) == chats
    # By the server's clock: every chat's second message came after the last first turn's
    # answer plus the delay, though the chats were spread over two processes.
    first_answers = [of_role(h, "assistant")[0] for h in history]
    second_messages = [of_role(h, "user")[1] for h in history]
    assert min(second_messages) >= max(first_answers) + timedelta(seconds=delay_s)
    storm = report["storm"]
    assert storm["turn_start_delay_s"] == delay_s
    assert storm["release_spread_ms"]["count"] == chats
    held = storm["follow_up_release_spread_ms"]
    assert held is not None and held["count"] == chats and held["max"] < delay_s * 1000
    assert "the follow-ups start together in 1 s" in done.stderr
