"""Synthesized traces: seeded and repeatable, shaped by the scenario, valid for every one shipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.config import ConfigError
from loadtest.scenario import load_scenario
from loadtest.trace.files import encode, read_trace_bytes
from loadtest.trace.synth import synth

SCENARIOS = sorted((Path(__file__).resolve().parents[3] / "scenarios").glob("*.toml"))


def test_the_same_seed_gives_the_same_bytes_and_another_seed_another_trace() -> None:
    scenario = load_scenario(SCENARIOS[0])
    one = encode(synth(scenario, seed=7, chats=50, duration=120))
    assert one == encode(synth(scenario, seed=7, chats=50, duration=120))
    assert one != encode(synth(scenario, seed=8, chats=50, duration=120))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_shipped_scenario_makes_a_valid_trace(path: Path) -> None:
    scenario = load_scenario(path)
    lines = synth(scenario, seed=1, duration=min(scenario.load.run_time, 120))
    trace = read_trace_bytes(encode(lines))
    assert trace.chats, "a scenario's own load starts chats"
    assert trace == lines.parsed()
    assert all(len(chat.turns) == scenario.chat.turns for chat in trace.chats)
    lengths = {len(p) for p in scenario.chat.prompts}
    assert {t.prompt_chars for t in trace.turns()} <= lengths


def test_chats_given_start_within_the_duration_in_order() -> None:
    trace = synth(load_scenario(None), seed=3, chats=200, duration=600).parsed()
    starts = [chat.start_s for chat in trace.chats]
    assert len(starts) == 200 == trace.header.chats
    assert starts == sorted(starts)
    assert starts[0] >= 0 and starts[-1] <= 600
    # Uniform over the span: each half gets its share, give or take.
    assert 70 < sum(1 for s in starts if s < 300) < 130


def test_turns_follow_the_chat_and_sim_sections(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        """
[chat]
turns = 4
think_time = [2, 4]
prompts = ["abcde"]

[sim.config]
tool_steps = 2
output_tokens = 50
ttft_ms = 1000
part_gap_ms = 10
parts_per_turn = 10
acquire_ms = 500
"""
    )
    trace = synth(load_scenario(path), seed=1, chats=10, duration=60).parsed()
    for chat in trace.chats:
        first, *rest = chat.turns
        assert first.think_s == 0.0
        assert all(2 <= t.think_s <= 4 for t in rest)
        for t in chat.turns:
            assert (t.prompt_chars, t.steps, t.tools, t.output_tokens) == (
                5,
                3,
                {"execute": 2},
                150,
            )
            # acquire + 3 steps x (ttft + 10 deltas x 10 ms), all constants here
            assert t.duration_s == pytest.approx(0.5 + 3 * (1.0 + 0.1))


def test_an_open_loop_starts_chats_at_its_turn_rate_over_turns(tmp_path: Path) -> None:
    path = tmp_path / "open.toml"
    path.write_text(
        '[load]\nmode = "open"\narrival_rate = 6\narrival = "constant"\n[chat]\nturns = 3\n'
    )
    trace = synth(load_scenario(path), seed=1, duration=100).parsed()
    # 6 turns a second in 3-turn chats: a chat every half second.
    assert len(trace.chats) == 199
    assert trace.chats[1].start_s - trace.chats[0].start_s == pytest.approx(0.5)


def test_a_closed_loop_keeps_its_users_busy_one_chat_each_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "closed.toml"
    path.write_text(
        "[load]\nusers = 4\nspawn_rate = 2\n"
        "[chat]\nturns = 2\nthink_time = 5\n"
        "[sim.config]\nttft_ms = 1000\nparts_per_turn = 0\n"
    )
    trace = synth(load_scenario(path), seed=1, duration=60).parsed()
    # Each chat lasts 0 + 1 + 5 + 1 = 7 s; users start at 0, 0.5, 1, 1.5 s.
    starts = [chat.start_s for chat in trace.chats]
    assert starts[:4] == [0.0, 0.5, 1.0, 1.5]
    assert starts[4:8] == [7.0, 7.5, 8.0, 8.5]
    assert len(starts) == 4 * 9  # 0, 7, ... 56 each


def test_a_bad_sim_key_names_the_scenario_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[sim.config]\ntool_stepz = 2\n")
    with pytest.raises(ConfigError, match=r"sim\.config\.tool_stepz: Extra inputs"):
        synth(load_scenario(path), seed=1, chats=1, duration=10)


def test_nonsense_counts_are_refused() -> None:
    with pytest.raises(ConfigError, match="--chats"):
        synth(load_scenario(None), seed=1, chats=-1, duration=10)
    with pytest.raises(ConfigError, match="--duration"):
        synth(load_scenario(None), seed=1, chats=1, duration=0)
