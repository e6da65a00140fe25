"""Load profiles: users over time, arrivals, and a scenario key of the wrong profile refused."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from loadtest.core.profiles import Open, Ramp, Spike, Steady, Step, Storm
from loadtest.scenario import ScenarioError, load_scenario


def test_closed_profiles_give_users_over_time() -> None:
    assert [Steady(users=10).users_at(t) for t in (0, 50, 99.9)] == [10, 10, 10]
    ramp = Ramp(users=10, ramp_s=10)
    assert [ramp.users_at(t) for t in (0, 1, 5, 10, 50)] == [0, 1, 5, 10, 10]
    step = Step(users=10, step_users=3, step_s=10)
    assert [step.users_at(t) for t in (0, 9, 10, 25, 90)] == [3, 3, 6, 9, 10]
    spike = Spike(users=10, spike_users=40, spike_at_s=20, spike_s=5)
    assert [spike.users_at(t) for t in (19, 20, 24.9, 25)] == [10, 50, 50, 10]
    # Every chat of a storm exists from the start: its barrier holds them, not a ramp.
    assert [Storm(users=10).users_at(t) for t in (0, 0.1, 99)] == [10, 10, 10]


def test_open_arrivals_average_the_rate() -> None:
    rng = random.Random(7)
    poisson = Open(arrival_rate=4.0)
    gaps = [poisson.next_gap(rng) for _ in range(20_000)]
    assert sum(gaps) / len(gaps) == pytest.approx(0.25, rel=0.03)
    assert len(set(gaps)) > 1000
    constant = Open(arrival_rate=4.0, arrival="constant")
    assert {constant.next_gap(rng, rate=2.0) for _ in range(10)} == {0.5}


def scenario(tmp_path: Path, load: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(f"[load]\n{load}\n")
    return path


def test_the_scenario_builds_the_profile_its_mode_and_shape_name(tmp_path: Path) -> None:
    spike = load_scenario(
        scenario(tmp_path, 'shape = "spike"\nusers = 2\nspike_users = 4\nspike_at_s = "2s"')
    ).load
    assert spike.profile == Spike(users=2, spike_users=4, spike_at_s=2.0)
    assert spike.users == 2 and spike.arrival_rate is None
    opened = load_scenario(scenario(tmp_path, 'mode = "open"\narrival_rate = 3')).load
    assert opened.profile == Open(arrival_rate=3) and opened.users is None


@pytest.mark.parametrize(
    ("load", "named"),
    [
        ('shape = "ramp"\nspike_users = 3', "spike_users is not a setting of the ramp shape"),
        ('mode = "open"\narrival_rate = 2\nusers = 4', "users is not a setting of open loop"),
        ('arrival = "constant"', "arrival is not a setting of the steady shape"),
        ('shape = "step"\nstep_users = 0', "load.step_users"),
        ("users = 0", "load.users"),
    ],
)
def test_a_key_of_another_profile_is_refused_by_name(tmp_path: Path, load: str, named: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(scenario(tmp_path, load))
    assert named in str(info.value)


def test_a_flag_that_switches_the_loop_drops_the_files_other_loop(tmp_path: Path) -> None:
    closed = scenario(tmp_path, 'users = 4\nshape = "ramp"\nramp_s = 3')
    opened = load_scenario(closed, {"load": {"mode": "open", "arrival_rate": 5.0}}).load
    assert opened.profile == Open(arrival_rate=5.0)
    back = load_scenario(
        scenario(tmp_path, 'mode = "open"\narrival_rate = 2'),
        {"load": {"mode": "closed", "users": 7}},
    ).load
    assert back.profile == Steady(users=7)


def test_a_storm_takes_coders_turn_start_delay_as_a_duration(tmp_path: Path) -> None:
    load = load_scenario(
        scenario(tmp_path, 'shape = "storm"\nusers = 20\nturn_start_delay = "1m30s"')
    ).load
    assert load.profile == Storm(users=20, turn_start_delay=90.0) and load.users == 20
    with pytest.raises(ScenarioError, match="turn_start_delay is not a setting of the steady"):
        load_scenario(scenario(tmp_path, 'turn_start_delay = "2s"'))
    with pytest.raises(ScenarioError, match=r"load\.turn_start_delay"):
        load_scenario(scenario(tmp_path, 'shape = "storm"\nturn_start_delay = -1'))


def test_a_shape_flag_drops_the_files_keys_of_its_old_shape(tmp_path: Path) -> None:
    path = scenario(tmp_path, 'shape = "ramp"\nusers = 8\nramp_s = "20s"')
    storm = load_scenario(path, {"load": {"shape": "storm", "turn_start_delay": 2.0}}).load
    assert storm.profile == Storm(users=8, turn_start_delay=2.0)
