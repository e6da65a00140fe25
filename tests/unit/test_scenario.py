"""Scenario files: durations, flag overrides, keys named in every error."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.config import Distribution, parse_duration
from loadtest.core.slo import parse_slo
from loadtest.scenario import ScenarioError, load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90.0), ("90s", 90.0), ("2m", 120.0), ("1h30m", 5400.0), ("250ms", 0.25), ("1.5", 1.5)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "ten", "5x", "1m junk"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(bad)


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_scenarios_load(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    for expr in scenario.slo.checks:
        parse_slo(expr)


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[load]\nusers = 3\nrun_time = "1m"\n[chat]\nturns = 2\n')
    scenario = load_scenario(path, {"load": {"users": 9}, "chat": {}})
    assert (scenario.load.users, scenario.load.run_time, scenario.chat.turns) == (9, 60.0, 2)


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("[load]\nusres = 3\n", "load.usres: Extra inputs are not permitted"),
        ("[load]\nusers = -1\n", "load.users"),
        ("[chat]\nthink_time = [3, 1]\n", "chat.think_time"),
        ("[load]\nmode = 'open'\n", "arrival_rate"),
        ("[bogus]\nx = 1\n", "bogus"),
        ("[load\n", "not valid TOML"),
    ],
)
def test_bad_scenario_names_the_key(tmp_path: Path, toml: str, named: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ScenarioError, match=r"bad\.toml") as info:
        load_scenario(path)
    assert named in str(info.value)


def test_missing_scenario_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[1, 3]", Distribution(dist="uniform", min=1, max=3)),
        ('"2s"', Distribution(value=2)),
        ('"lognormal:1,0.5"', Distribution(dist="lognormal", p50=1, sigma=0.5)),
    ],
)
def test_think_time_is_the_one_distribution_type(
    tmp_path: Path, value: str, expected: Distribution
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(f"[chat]\nthink_time = {value}\n")
    assert load_scenario(path).chat.think_time == expected


def test_agent_turn_shapes_are_written_into_each_prompts_control_block() -> None:
    import random

    from loadtest.mockllm.control import find_control
    from loadtest.scenario import ChatSection

    chat = ChatSection(prompts=["go"], tool_calls_per_turn="uniform:1,4", subagents_per_turn=1)
    rng = random.Random(5)
    shapes = [find_control(chat.prompt(rng)) for _ in range(50)]
    assert all(s is not None and 1 <= (s.tool_calls_this_turn or 0) <= 4 for s in shapes)
    assert {s.subagents_this_turn for s in shapes if s is not None} == {1}
    assert ChatSection(prompts=["go"]).prompt(rng) == "go"  # no keys, no block
