"""Wiring a run's runtime into Locust: a load process samples its health while it makes load,
and stops sampling (and says it is stopping) when the test stops."""

from __future__ import annotations

from locust.env import Environment

from loadtest.locust import runtime
from loadtest.locust.distributed import install
from loadtest.protocol.eras import Era
from loadtest.scenario import Scenario


def test_a_local_run_samples_its_health_until_the_test_stops() -> None:
    env = Environment()
    env.create_local_runner()
    settings = runtime.RunSettings(scenario=Scenario(), host="http://x", era=Era.D)
    rt = runtime.install(settings, ["t"])
    (sampler,) = install(env, rt)
    assert not sampler.dead and not rt.stopping
    env.events.test_stopping.fire(environment=env)
    assert rt.stopping
    sampler.join(timeout=10)
    assert sampler.dead
