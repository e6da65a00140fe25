"""The simulator's ``/metrics``: Coder's names, and the same figures as its plain tallies."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from loadtest.client.server_metrics import parse
from loadtest.core.server_delta import Scrape, server_figures
from loadtest.sim.metrics import DaemonMetrics, Live


def test_a_scrape_of_the_registry_reads_what_the_tallies_say() -> None:
    metrics = DaemonMetrics()
    before = parse(generate_latest(metrics.registry).decode())
    metrics.stage("queue_wait", 0.002)
    metrics.stage("queue_wait", 0.3)
    metrics.first_token(0.25, "openai", "gpt-sim")
    metrics.retry("openai", "gpt-sim", "overloaded")
    metrics.stage("stream", 1.5, ("openai-compat", "gpt-sim"))
    metrics.stage("commit", -0.001)  # a clock gone backwards: dropped, counted
    metrics.capacity_wait(7.0)
    metrics.live = lambda: Live(agents_active=2, agents_queued=1, pubsub=("nats", 7, 1))
    after = parse(generate_latest(metrics.registry).decode())
    figures = server_figures([Scrape("sim", before)], [Scrape("sim", after)])
    own = metrics.figures()
    for name, tally in own["stages"].items():
        assert figures["stages"][name]["count"] == tally["count"]
        assert figures["stages"][name]["sum_s"] == pytest.approx(tally["sum_s"])
    assert set(figures["stages"]) == {
        "queue_wait",
        "time_to_first_token",
        "stream",
        "capacity_wait",
    }
    model = figures["model_stages"]["stream"]["gpt-sim"]
    assert (model["count"], model["sum_s"]) == (1, pytest.approx(1.5))
    assert own["model_stages"]["stream"]["gpt-sim"]["count"] == 1
    assert (
        figures["stage_anomalies"]["negative_elapsed"]
        == 1
        == own["stage_anomalies"]["negative_elapsed"]
    )
    assert set(figures["stage_anomalies"]) == set(own["stage_anomalies"])
    assert figures["capacity_wait"]["count"] == own["capacity_wait"]["count"] == 1
    assert figures["capacity_wait"]["sum_s"] == pytest.approx(7.0)
    assert figures["ttft"]["count"] == own["ttft"]["count"] == 1
    assert figures["retries"] == own["retries"] == {"overloaded": 1}
    assert figures["agents"]["active"] == {"start": 0, "end": 2, "max": 2}
    assert figures["agents"]["queued_for_capacity"]["end"] == own["agents"]["queued_for_capacity"]
    assert figures["pubsub"] == {"publishes": 7, "colossal": 1}
    assert figures["missing"] == []


def test_every_simulator_has_its_own_registry() -> None:
    one, two = DaemonMetrics(), DaemonMetrics()
    one.stage("commit", 0.001)
    assert b'stage="commit"' in generate_latest(one.registry)
    assert b'stage="commit"' not in generate_latest(two.registry)


def test_the_gates_gauges_are_per_pool() -> None:
    metrics = DaemonMetrics()
    metrics.live = lambda: Live(
        agents_active=7, agents_queued=2, by_pool={"root": (5, 2), "subagent": (2, 0)}
    )
    text = generate_latest(metrics.registry).decode()
    assert 'coderd_chatd_agents_active{pool="root"} 5.0' in text
    assert 'coderd_chatd_agents_active{pool="subagent"} 2.0' in text
    assert 'coderd_chatd_agents_queued_for_capacity{pool="root"} 2.0' in text
    assert 'coderd_chatd_agents_queued_for_capacity{pool="subagent"} 0.0' in text
