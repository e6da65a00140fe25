"""``ScenarioShape``: Locust's user count over time, from the scenario's closed-loop profile."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from loadtest.locust import runtime
from loadtest.locust.shape import ScenarioShape
from loadtest.protocol.eras import Era
from loadtest.scenario import Scenario


def shape_at(scenario: dict[str, Any], t: float, **environment: Any) -> tuple[int, float] | None:
    env = SimpleNamespace(**environment)
    settings = runtime.RunSettings(
        scenario=Scenario.model_validate(scenario), host="http://x", era=Era.D
    )
    runtime.attach(env, runtime.install(settings, ["t"]))
    shape = ScenarioShape()
    shape.runner = SimpleNamespace(environment=env)  # type: ignore[assignment]
    shape.get_run_time = lambda: t  # type: ignore[method-assign]
    return shape.tick()


@pytest.mark.parametrize(
    ("t", "users"), [(0.0, 0), (2.5, 3), (5.0, 5), (9.0, 9), (10.0, 10), (20.0, 10)]
)
def test_a_ramp_grows_to_its_users_and_holds(t: float, users: int) -> None:
    ramp = {"load": {"shape": "ramp", "users": 10, "ramp_s": 10, "run_time": 30, "spawn_rate": 4}}
    assert shape_at(ramp, t) == (users, 4.0)


def test_watchers_come_on_top_and_the_run_ends_at_its_run_time() -> None:
    scenario = {"load": {"users": 4, "run_time": 30}, "chat": {"watchers_per_chat": 2}}
    assert shape_at(scenario, 1.0) == (12, 5.0)
    assert shape_at(scenario, 30.0) is None


def test_an_open_loop_has_no_shape() -> None:
    assert shape_at({"load": {"mode": "open", "arrival_rate": 2, "run_time": 30}}, 1.0) is None


def test_a_storm_starts_every_user_at_once_and_ends_when_its_chats_have() -> None:
    storm = {"load": {"shape": "storm", "users": 6, "run_time": 600}}
    assert shape_at(storm, 0.0, chatload_storm=SimpleNamespace(finished=False)) == (6, 6.0)
    assert shape_at(storm, 1.0, chatload_storm=SimpleNamespace(finished=True)) is None
