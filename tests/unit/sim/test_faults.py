"""The simulator's faults, declared once: each entry is a config key, a flag with its help, a
counter, and the planner's and replicas' settings follow from it."""

from __future__ import annotations

import argparse
import random

import pytest

from loadtest.config import ConfigError, flag_overrides, load_model
from loadtest.sim import plan as plans
from loadtest.sim.cluster.config import ReplicaCounts, ReplicaFaults, ReplicaSettings
from loadtest.sim.command import configure
from loadtest.sim.config import Faults, SimConfig
from loadtest.sim.faults import SIM_FAULTS, TURN_FAULTS, SimFault
from loadtest.sim.hub import ChatCounts


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    configure(parser)
    return parser


@pytest.mark.parametrize("fault", SIM_FAULTS, ids=lambda f: f.name)
def test_each_fault_has_its_setting_flag_help_and_counter(fault: SimFault) -> None:
    model = ReplicaFaults if fault.scope == "replica" else Faults
    info = model.model_fields[fault.key]
    assert info.description == fault.help and info.default == 0.0
    option = next(a for a in _parser()._actions if fault.flag in a.option_strings)
    assert fault.help in (option.help or "")
    # The counter it names is one /__sim/counts serves (a chat's, or a replica's).
    section, _, name = fault.counter.partition(".")
    wire = ReplicaCounts().wire() if section == "replica" else ChatCounts().wire()
    assert (name if section == "replica" else section) in wire


def test_a_config_files_fault_keys_and_flags_keep_their_names() -> None:
    args = _parser().parse_args(["--drop-rate", "0.5", "--part-reorder-rate", "0.25"])
    config = load_model(SimConfig, None, flag_overrides(args))
    assert config.faults.rate(TURN_FAULTS[0]) == 0.5
    assert config.faults.model_dump()["part_reorder_rate"] == 0.25
    replica = _parser().parse_args(["--notify-delay-ms", "5", "--relay-drop-rate", "0.1"])
    assert (replica.notify_delay_ms, replica.relay_drop_rate) == (5.0, 0.1)


def test_a_bad_rate_is_refused_naming_its_key() -> None:
    with pytest.raises(ConfigError, match=r"faults\.stall_rate"):
        load_model(SimConfig, None, {"faults": {"stall_rate": 2}})
    with pytest.raises(ConfigError, match=r"faults\.no_such_rate"):
        load_model(SimConfig, None, {"faults": {"no_such_rate": 0.1}})


def test_the_planner_tries_each_turn_fault_in_its_order() -> None:
    for fault in TURN_FAULTS:
        config = SimConfig.model_validate({"faults": {fault.key: 1.0}, "parts_per_turn": 4})
        plan = plans.plan(config, random.Random(3), "openai")
        assert plan.fault == fault.name and plan.fault_at == 2
    assert plans.plan(SimConfig(), random.Random(3), "openai").fault is None
    both = SimConfig.model_validate({"faults": {"drop_rate": 1.0, "close_rate": 1.0}})
    assert plans.plan(both, random.Random(3), "openai").fault == "drop"


def test_replica_settings_carry_their_faults_to_the_process() -> None:
    settings = ReplicaSettings(
        index=1,
        count=2,
        database_url="postgresql://x",
        pubsub_url="nats://x",
        faults=ReplicaFaults(notify_drop_rate=0.5, notify_delay_ms=7),
    )
    back = ReplicaSettings.model_validate_json(settings.model_dump_json())
    rates = {f.name: back.faults.rate(f) for f in SIM_FAULTS if f.scope == "replica"}
    assert rates == {
        "notify_drop": 0.5,
        "notify_delay": 7.0,
        "relay_drop": 0.0,
        "relay_duplicate": 0.0,
    }
