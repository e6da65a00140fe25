"""Simulated users on accounts: one each against the embedded simulator by default, so watch
traffic grows with users, not with their square; a shared account is warned of and named."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.chatload_cli import chatload

RUN_TIMEOUT = 120


def chatload_run(scenario: Path, out: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """``chatload run`` of ``scenario`` against the embedded simulator, its report in ``out``."""
    command = ["run", "--quiet", "--scenario", str(scenario), "--report-dir", str(out)]
    return chatload(*command, timeout=timeout)


def run_embedded(tmp_path: Path, name: str, accounts: str | None) -> tuple[dict[str, Any], str]:
    """``chatload run`` of 4 users with a watch socket each and a watcher on each chat against
    the embedded simulator;
    its report and what it printed to stderr."""
    lines = [
        f'name = "{name}"',
        "[load]",
        'users = 4\nspawn_rate = 8\nrun_time = "5s"\nstop_timeout = 20',
        "[chat]",
        "turns = 3\nthink_time = [0.05, 0.1]\nwatch_sockets_per_user = 1\nwatchers_per_chat = 1",
        "[sim]",
        'config = {ttft_ms = 50, parts_per_turn = 4, part_gap_ms = {dist = "constant", value = 5}}',
    ]
    if accounts is not None:
        lines.append(f"accounts = {json.dumps(accounts)}")
    path = tmp_path / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / name
    done = chatload_run(path, out, RUN_TIMEOUT)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((out / "report.json").read_text()), done.stderr


def status_changes_per_turn(rep: dict[str, Any]) -> float:
    changes = rep["watch"]["events_by_kind"].get("status_change", 0)
    return float(changes / max(1, rep["counts"]["turns_completed"]))


def test_each_user_has_its_own_account_and_a_shared_one_multiplies_watch_traffic(
    tmp_path: Path,
) -> None:
    own, own_err = run_embedded(tmp_path, "own", None)
    shared, _ = run_embedded(tmp_path, "shared", "shared")
    assert own["run"]["accounts"] == 4 and shared["run"]["accounts"] == 1
    # Watchers read their chats with the chats' owners' logins: no stream is refused.
    assert own["errors"] == [] and shared["errors"] == []
    assert own["counts"]["streams_opened"] > own["counts"]["turns_completed"] / 3
    # Each socket hears its own user's chats, or all four users' chats: about 4x the traffic.
    assert status_changes_per_turn(own) > 0
    ratio = status_changes_per_turn(shared) / status_changes_per_turn(own)
    assert 2.5 < ratio < 6, f"shared / own status changes per turn: {ratio:.2f}"
    # Four users per account is a handful: no warning either way.
    assert "share" not in own_err and not own["run"]["warnings"]
    assert not shared["run"]["warnings"]


@pytest.mark.slow  # about 3 minutes: make test-all
def test_a_soak_on_one_shared_account_with_watch_sockets_keeps_its_memory_flat(
    tmp_path: Path,
) -> None:
    """The worst case for the generator's memory: every user on one account, so each watch
    socket hears of everyone's chats. Memory after the warm-up stays within a margin."""
    path = tmp_path / "soak.toml"
    path.write_text(
        "\n".join(
            [
                'name = "memory"',
                "[load]",
                'shape = "ramp"\nramp_s = "10s"\nusers = 100\nspawn_rate = 20',
                'run_time = "150s"\nstop_timeout = 20',
                "[chat]",
                "turns = 10\nthink_time = [0.5, 2]\nwatch_sockets_per_user = 1",
                "watchers_per_chat = 1\nturn_timeout = 60",
                "[sim]",
                'accounts = "shared"',
                "[report]",
                "html = false\ncsv = false",
            ]
        )
        + "\n"
    )
    out = tmp_path / "out"
    done = chatload_run(path, out, 400)
    rep = json.loads((out / "report.json").read_text())
    assert rep["run"]["complete"], done.stderr[-2000:]
    assert "100 users share 1 account" in done.stderr  # the preflight said so
    memory = [(p["t"], p["generator_memory_mb"]) for p in rep["timeseries"]]
    after_warm_up = max(mb for t, mb in memory if mb and 55 <= t <= 65)
    end = rep["generator"]["memory_mb_end"]
    assert end <= after_warm_up * 1.25, f"{after_warm_up:.0f} MB at 60 s, {end:.0f} MB at the end"
    assert rep["generator"]["memory_mb_peak"] < 600
