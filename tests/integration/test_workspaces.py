"""``[target] workspaces``: the preflight finds Coder's ``scaletest-`` workspaces (through the
workspaces API, as Coder's scaletest does) and refuses when none can take chats."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.chatload_cli import chatload


def run(tmp_path: Path, target: str, sim: str = "") -> tuple[int, str, Path]:
    path = tmp_path / "ws.toml"
    path.write_text(
        'name = "ws"\n[load]\nusers = 4\nrun_time = "3s"\nstop_timeout = 10\n'
        f"[target]\n{target}\n[sim]\n{sim}\n[report]\nhtml = false\ncsv = false\n"
    )
    out = tmp_path / "out"
    done = chatload("run", "--quiet", "--scenario", str(path), "--report-dir", str(out))
    return done.returncode, done.stdout + done.stderr, out


def test_chats_go_to_the_matching_workspaces(tmp_path: Path) -> None:
    code, out, report = run(tmp_path, 'workspaces = "scaletest-"\nchats_per_workspace = 2')
    assert code == 0, out[-2000:]
    assert json.loads((report / "report.json").read_text())["run"]["workspaces"] == 2
    assert "workspaces: 2" in out


def test_no_matching_workspace_exits_3_naming_the_prefix(tmp_path: Path) -> None:
    code, out, _ = run(tmp_path, 'workspaces = "nightly-"', "config = {workspaces = 3}")
    assert code == 3 and "'nightly-'" in out and "no workspace" in out


def test_too_few_workspaces_for_chats_per_workspace_exit_3(tmp_path: Path) -> None:
    target = 'workspaces = "scaletest-"\nchats_per_workspace = 1'
    code, out, _ = run(tmp_path, target, "config = {workspaces = 2}")
    assert code == 3 and "4 users need 4 workspaces" in out


def test_without_workspaces_the_summary_says_tools_will_fail(tmp_path: Path) -> None:
    code, out, report = run(tmp_path, "")
    assert code == 0, out[-2000:]
    assert "tools will fail: no workspace" in out
    assert json.loads((report / "report.json").read_text())["run"]["workspaces"] == 0
