"""``chatload run --trace``: a replay starts every chat of the trace near its planned moment,
completes every planned turn, ends by itself, and --speedup compresses it."""

from __future__ import annotations

import gzip
import json
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadtest.runner.processes import SimProcess
from tests.integration.chatload_cli import chatload

RUN_TIMEOUT = 180
#: Fast answers, so a replay's wall time is its trace's starts and think times.
SIM = 'config = {ttft_ms = 20, parts_per_turn = 3, part_gap_ms = {dist = "constant", value = 2}}'


def write_trace(path: Path, chats: int, every_s: float, turns: int, think_s: float) -> None:
    header = {
        "schema_version": 1,
        "source": "test",
        "started_at": "2026-12-01T09:00:00Z",
        "duration_s": chats * every_s,
        "chats": chats,
    }
    turn = {
        "prompt_chars": 80,
        "steps": 1,
        "tools": {},
        "subagents": 0,
        "output_tokens": 40,
        "duration_s": 0.5,
    }
    lines = [header] + [
        {
            "chat": f"chat-{i}",
            "start_s": i * every_s,
            "parent": None,
            "workspace": None,
            "turns": [{**turn, "think_s": 0.0 if n == 0 else think_s} for n in range(turns)],
        }
        for i in range(chats)
    ]
    with gzip.open(path, "wt") as out:
        out.writelines(json.dumps(line) + "\n" for line in lines)


def replay(tmp_path: Path, trace: Path, name: str, *flags: str) -> tuple[int, dict[str, Any], str]:
    scenario = tmp_path / "replay.toml"
    scenario.write_text(f'name = "replay"\n[sim]\n{SIM}\n[report]\nhtml = false\ncsv = false\n')
    out = tmp_path / name
    command = ["run", "--quiet", "--trace", str(trace), "--scenario", str(scenario)]
    done = chatload(*command, "--report-dir", str(out), *flags, timeout=RUN_TIMEOUT)
    report = json.loads((out / "report.json").read_text()) if out.exists() else {}
    return done.returncode, report, done.stdout + done.stderr


def test_a_replay_starts_every_chat_completes_every_turn_and_ends_by_itself(
    tmp_path: Path,
) -> None:
    trace = tmp_path / "t.jsonl.gz"
    write_trace(trace, chats=12, every_s=0.25, turns=3, think_s=0.2)
    code, rep, out = replay(tmp_path, trace, "two", "--workers", "2")
    assert code == 0, out[-3000:]
    section = rep["trace"]
    assert section["chats_planned"] == section["chats_started"] == 12  # split, none twice
    assert section["turns_planned"] == 36 == section["turns_completed"]
    assert rep["counts"]["turns_started"] == 36 and rep["counts"]["turns_failed"] == 0
    assert section["start_error_ms"]["count"] == 12
    assert section["duration_ratio"]["count"] == 36
    assert rep["run"]["complete"] and rep["run"]["duration_s"] < 60, "it ended with the trace"


@pytest.mark.slow  # long: make test-all (make test stays under 10 minutes on 2 cores)
def test_speedup_two_halves_the_wall_time_and_doubles_the_arrival_rate(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl.gz"
    write_trace(trace, chats=10, every_s=1.0, turns=2, think_s=2.0)
    _, once, out1 = replay(tmp_path, trace, "x1")
    _, twice, out2 = replay(tmp_path, trace, "x2", "--speedup", "2")
    assert once["trace"]["turns_completed"] == twice["trace"]["turns_completed"] == 20, out1 + out2
    # Bounded by what was injected, not by how busy the machine is: the last of the 10 chats
    # is due at 9 s (4.5 s at 2x) and starts no earlier, and no later than the run's own
    # worst start error says it did.
    for rep, due_s in ((once, 9.0), (twice, 4.5)):
        trace = rep["trace"]
        last_start_s = trace["chats_started"] / trace["arrivals_per_s"]
        late_s = trace["start_error_ms"]["max"] / 1000
        assert due_s - 0.05 <= last_start_s <= due_s + late_s + 0.05, (last_start_s, late_s)
    # The whole replay is at least its schedule (the last chat's start, then its think time
    # before its second turn), and the 2x one takes less time than the 1x one.
    assert twice["run"]["duration_s"] >= 4.5 + 1.0
    assert once["run"]["duration_s"] >= 9.0 + 2.0
    assert twice["run"]["duration_s"] < once["run"]["duration_s"], out1 + out2


def test_a_bad_trace_exits_2_naming_the_line_and_runs_nothing(tmp_path: Path) -> None:
    trace = tmp_path / "bad.jsonl"
    write_trace(tmp_path / "good.jsonl.gz", chats=2, every_s=1.0, turns=1, think_s=0.0)
    with gzip.open(tmp_path / "good.jsonl.gz", "rt") as good:
        lines = good.read().splitlines()
    broken = json.loads(lines[2])
    del broken["turns"][0]["prompt_chars"]
    trace.write_text("\n".join([lines[0], lines[1], json.dumps(broken)]) + "\n")
    code, rep, out = replay(tmp_path, trace, "bad")
    assert code == 2 and not rep
    assert "line 3" in out and "prompt_chars" in out


@pytest.mark.slow  # long: make test-all (make test stays under 10 minutes on 2 cores)
def test_a_capacity_search_over_a_trace_raises_its_speed(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl.gz"
    write_trace(trace, chats=20, every_s=0.5, turns=2, think_s=0.5)
    scenario = tmp_path / "replay.toml"
    scenario.write_text(f'name = "replay"\n[sim]\n{SIM}\n')
    out = tmp_path / "capacity"
    flags = ["--trace", str(trace), "--scenario", str(scenario), "--slo", "error_rate < 50%"]
    flags += ["--speedup-from", "1", "--speedup-max", "4", "--step-time", "3s", "--warmup", "1s"]
    done = chatload("capacity", *flags, "--report-dir", str(out), timeout=RUN_TIMEOUT)
    found = json.loads((out / "capacity.json").read_text())
    assert found["dimension"] == "speedup", done.stdout[-3000:] + done.stderr[-3000:]
    if found["boundary"] == "generator_bound":  # a machine too busy to drive it: no verdict
        assert done.returncode == 1 and found["steps"][-1]["generator_bottleneck"]
        return
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert found["boundary"] == "not_reached"
    assert [step["load"] for step in found["steps"]] == [1.0, 2.0, 4.0]
    rates = [step["figures"]["turns_per_s"] for step in found["steps"]]
    assert rates[2] > 1.5 * rates[0], f"turns/s by speedup: {rates}"  # faster replays, more load


def test_a_replay_reproduces_the_traces_tool_calls_and_sub_agents_on_the_simulator(
    tmp_path: Path,
) -> None:
    """The round trip: the simulator ran exactly the tool calls and sub-agents the trace
    recorded, because each prompt asked for its turn's shape."""
    turn = {"prompt_chars": 60, "output_tokens": 20, "duration_s": 1.0}
    chats = [
        {
            "chat": f"user-{i}",
            "start_s": i * 0.3,
            "parent": None,
            "workspace": 0,
            "turns": [
                {**turn, "think_s": 0.0, "steps": 3, "tools": {"execute": 2}, "subagents": 0},
                {**turn, "think_s": 0.1, "steps": 1, "tools": {}, "subagents": 0},
            ],
        }
        for i in range(3)
    ]
    chats[1]["turns"][1] = {
        **turn,
        "think_s": 0.1,
        "steps": 4,
        "tools": {"execute": 1, "spawn_agent": 1, "wait_agent": 1},
        "subagents": 1,
    }
    child_turn = {**turn, "think_s": 0.0, "steps": 3, "tools": {"execute": 2}, "subagents": 0}
    child = {"chat": "child", "start_s": 1.0, "parent": "user-1", "workspace": 0}
    header = {
        "schema_version": 1,
        "source": "test",
        "started_at": "2026-12-01T09:00:00Z",
        "duration_s": 2.0,
        "chats": 4,
    }
    trace = tmp_path / "agents.jsonl"
    lines = [header, *chats, {**child, "turns": [child_turn]}]
    trace.write_text("".join(json.dumps(line) + "\n" for line in lines))
    config = {"ttft_ms": 20, "parts_per_turn": 3, "part_gap_ms": 2, "workspaces": 1}
    token = secrets.token_urlsafe(12)
    sim = SimProcess.start("d", token, config)
    try:
        scenario = tmp_path / "r.toml"
        scenario.write_text('name = "r"\n[target]\nworkspaces = "scaletest-"\n')
        done = chatload(
            "run", "--quiet", "--trace", str(trace), "--host", sim.url, f"--token={token}",
            "--scenario", str(scenario), "--report-dir", str(tmp_path / "out"),
            timeout=RUN_TIMEOUT,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        totals = httpx.get(f"{sim.url}/__sim/counts", timeout=10).json()["totals"]
    finally:
        sim.stop()
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["trace"]["turns_completed"] == rep["trace"]["turns_planned"] == 6
    # The trace: 3 x 2 execute, 1 more in user-1's second turn, 2 in its child; one child.
    assert totals["tool_calls"].get("execute") == 9, totals["tool_calls"]
    assert totals["tool_calls"].get("spawn_agent") == 1 == totals["subagents_spawned"]
    assert totals["tool_calls"].get("wait_agent") == 1
    assert rep["counts"]["subagents_spawned"] == 1


def test_synth_then_replay_runs_what_the_trace_says(tmp_path: Path) -> None:
    """A trace synthesized from a scenario whose simulator makes one tool call a turn,
    replayed on a simulator that makes none unless asked: the prompts ask, per turn."""
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        'name = "s"\n[chat]\nturns = 2\nthink_time = [0.05, 0.1]\n'
        "[sim]\nconfig = {tool_steps = 1, ttft_ms = 20, parts_per_turn = 3}\n"
    )
    trace = tmp_path / "synth.jsonl.gz"
    made = chatload(
        "trace", "synth", "--scenario", str(scenario), "--chats", "6", "--duration", "3s",
        "--out", str(trace),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    token = secrets.token_urlsafe(12)
    sim = SimProcess.start("d", token, {"tool_steps": 0, "ttft_ms": 20, "parts_per_turn": 3})
    try:
        replayed = tmp_path / "replayed"
        done = chatload(
            "run", "--quiet", "--trace", str(trace), "--host", sim.url, f"--token={token}",
            "--report-dir", str(replayed), timeout=RUN_TIMEOUT,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        totals = httpx.get(f"{sim.url}/__sim/counts", timeout=10).json()["totals"]
    finally:
        sim.stop()
    rep = json.loads((replayed / "report.json").read_text())["trace"]
    assert rep["chats_started"] == rep["chats_planned"] == 6
    assert rep["turns_completed"] == rep["turns_planned"] == 12
    assert rep["start_error_ms"]["count"] == 6
    assert totals["tool_calls"].get("execute") == 12 and totals["turns_completed"] == 12
