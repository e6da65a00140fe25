"""Issue 24's proof end to end: ``chatload run`` against the simulator (and behind it the
mock LLM) measures an agent's steps and tools as the servers say they ran them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.chatload_cli import chatload
from tests.integration.conftest import EraSim
from tests.integration.test_mockllm import _start, _stop

FAST = ["--ttft", "20", "--part-gap", "2", "--parts-per-turn", "4", "--rate-limit", "-1"]
TOOL_MS = 300


def run(sim: EraSim, tmp_path: Path, chat: str) -> dict[str, Any]:
    """``chatload run`` of 3 users against ``sim`` in its scaletest- workspaces."""
    scenario = tmp_path / "agents.toml"
    scenario.write_text(
        'name = "agents"\n[load]\nusers = 3\nspawn_rate = 6\nrun_time = "4s"\nstop_timeout = 30\n'
        f'[target]\nworkspaces = "scaletest-"\n[chat]\nthink_time = [0.05, 0.1]\n{chat}\n'
    )
    out = tmp_path / "out"
    done = chatload(
        "run", "--quiet", "--host", sim.url, f"--token={sim.token}", "--scenario", str(scenario),
        "--report-dir", str(out), timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    return report


def test_tool_time_and_steps_match_what_the_simulator_ran(tmp_path: Path) -> None:
    sim = EraSim("d", [*FAST, "--workspaces", "3", "--tool-time", f"constant:{TOOL_MS}"])
    try:
        rep = run(sim, tmp_path, "tool_calls_per_turn = [1, 3]\nsubagents_per_turn = [0, 1]")
        totals = sim.counts()["totals"]
    finally:
        sim.stop()
    counts, completed = rep["counts"], rep["counts"]["turns_completed"]
    assert completed > 0 and counts["turns_failed"] == 0 and counts["tool_errors"] == 0
    # What the client counted is what the simulator ran, by name, sub-agents included.
    assert rep["tool_calls_by_name"] == {k: v for k, v in totals["tool_calls"].items() if v}
    assert counts["subagents_spawned"] == totals["subagents_spawned"]
    # The tool time is the injected 300 ms, never less, and not a step's whole time (a busy
    # machine may add tens of ms; a TTFT is 5 ms here, so twice the tool time is a bound).
    execute = rep["tool_time_by_name"]["execute"]
    assert TOOL_MS <= execute["p50"] < TOOL_MS * 2, execute
    # Every turn: its own tool calls + 1 steps (sub-agents' calls are steps of the parent too).
    steps = rep["distributions"]["steps_per_turn"]
    calls = rep["distributions"]["tool_calls_per_turn"]
    assert steps["count"] == calls["count"] == completed
    assert (steps["min"], steps["max"]) == (calls["min"] + 1, calls["max"] + 1)
    assert steps["mean"] == pytest.approx(calls["mean"] + 1)


@pytest.fixture
def mock_llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    flags = ["--ttft", "0", "--tokens-per-s", "0", "--output-tokens", "4"]
    mock = _start(tmp_path_factory.mktemp("mock"), *flags, "--tool-calls-per-turn", "2")
    yield mock.url
    code, output = _stop(mock)
    assert code == 0, output


def test_three_tiers_every_turn_has_three_steps_and_the_mock_agrees(
    mock_llm: str, tmp_path: Path
) -> None:
    """chatload run -> chatload sim --llm-url -> chatload mock-llm --tool-calls-per-turn 2."""
    sim = EraSim("d", [*FAST, "--llm-url", mock_llm, "--workspaces", "3", "--tool-time", "20"])
    try:
        rep = run(sim, tmp_path, "")
        sim_calls = sim.counts()["totals"]["tool_calls"]
    finally:
        sim.stop()
    mock = httpx.get(mock_llm.removesuffix("/v1") + "/__mock/counts", timeout=10).json()
    completed = rep["counts"]["turns_completed"]
    steps = rep["distributions"]["steps_per_turn"]
    assert completed > 0 and (steps["min"], steps["max"]) == (3, 3)
    assert rep["tool_calls_by_name"]["execute"] == 2 * completed
    assert mock["tool_calls"]["execute"] == sim_calls["execute"] == 2 * completed
