"""The simulator's settings: defaults, refusals naming the key, the gate's pools, and the
integrity faults drawn for a step's deltas."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from loadtest.sim.config import UNLICENSED_ROOT, UNLICENSED_SUBAGENTS, Faults, SimConfig


def test_defaults_make_a_working_deployment_with_no_faults_and_no_gate() -> None:
    config = SimConfig()
    assert config.error_rate == 0 and config.faults.part_faults(random.Random(1), 5) is None
    assert config.pool_limit(False) is None and config.pool_limit(True) is None
    assert config.requires_action_timeout_ms == 300_000  # Coder: 5 minutes


@pytest.mark.parametrize(
    ("patch", "key"),
    [
        ({"error_rate": 1.5}, "error_rate"),
        ({"parts_per_turn": -1}, "parts_per_turn"),
        ({"error_retries": 26}, "error_retries"),
        ({"faults": {"close_code": 999}}, "close_code"),
        ({"no_such_knob": 1}, "no_such_knob"),
    ],
)
def test_a_bad_setting_is_refused_naming_its_key(patch: dict[str, object], key: str) -> None:
    with pytest.raises(ValidationError) as refused:
        SimConfig.model_validate(patch)
    assert key in str(refused.value)


def test_an_assignment_is_validated_too_and_leaves_the_old_value() -> None:
    config = SimConfig()
    with pytest.raises(ValidationError):
        config.error_rate = 2.0
    assert config.error_rate == 0


@pytest.mark.parametrize(
    ("settings", "root", "sub"),
    [
        ({"agent_gate": True}, UNLICENSED_ROOT, UNLICENSED_SUBAGENTS),
        ({"agent_limit": 2}, 2, UNLICENSED_SUBAGENTS),
        ({"subagent_limit": 3}, UNLICENSED_ROOT, 3),
        ({"agent_gate": True, "agent_limit": 1, "subagent_limit": 1}, 1, 1),
    ],
)
def test_the_gate_is_on_with_any_of_its_settings_and_coders_limits_fill_the_rest(
    settings: dict[str, object], root: int, sub: int
) -> None:
    config = SimConfig.model_validate(settings)
    assert (config.pool_limit(False), config.pool_limit(True)) == (root, sub)


def test_part_faults_spare_the_last_delta_and_the_one_a_reorder_moves() -> None:
    faults = Faults(part_reorder_rate=1.0)
    assert faults.part_faults(random.Random(1), 5) == [
        "part_reorder",
        None,
        "part_reorder",
        None,
        None,
    ]
    assert Faults().part_faults(random.Random(1), 5) is None
    dropping = Faults(part_drop_rate=1.0).part_faults(random.Random(1), 3)
    assert dropping == ["part_drop", "part_drop", None]


def test_part_faults_follow_their_rates_over_many_draws() -> None:
    faults = Faults(part_drop_rate=0.1, part_duplicate_rate=0.2)
    drawn = faults.part_faults(random.Random(7), 20_001)
    assert drawn is not None and drawn[-1] is None
    share = {name: drawn.count(name) / 20_000 for name in ("part_drop", "part_duplicate")}
    assert 0.08 < share["part_drop"] < 0.12 and 0.17 < share["part_duplicate"] < 0.23
