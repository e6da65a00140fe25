"""Protocol §9.7 over the wire: the simulator's ``/metrics`` serves Coder's
``model_stage_duration_seconds``, ``stage_anomalies_total`` and
``agent_capacity_wait_seconds`` with Coder's labels and buckets, and ``--server-metrics``'s
reader takes every one of them, and every stage that comes, exactly as the simulator counted."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadtest.client.preflight import inspect_target
from loadtest.client.rest import ChatClient
from loadtest.client.server_metrics import MetricsScraper
from loadtest.core.server_delta import server_figures
from loadtest.protocol import chatd_metrics as names
from loadtest.runner.processes import SimProcess

#: A gate of one agent for three chats (two wait for capacity), short turns.
CONFIG = {
    "ttft_ms": 20,
    "parts_per_turn": 4,
    "part_gap_ms": 5,
    "agent_limit": 1,
    "rate_limit_per_minute": -1,
}


@pytest.fixture
def sim() -> Iterator[tuple[SimProcess, str]]:
    token = secrets.token_urlsafe(18)
    process = SimProcess.start("d", token, CONFIG)
    yield process, token
    process.stop()


def families(url: str) -> dict[str, Any]:
    text = httpx.get(url, timeout=10).text
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_the_new_families_are_served_as_coders_and_read_whole(
    sim: tuple[SimProcess, str],
) -> None:
    process, token = sim
    scraper = MetricsScraper([f"{process.url}/metrics"])
    _, start = scraper.scrape()
    target = inspect_target(process.url, [token])
    client = ChatClient(process.url, token, target.era)
    chats = [client.create_chat("hello", target.organizations[0])[0] for _ in range(3)]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # bounded: until the three turns are done
        done = [client.call("get", "GET", client.paths.chat(c.id)).body for c in chats]
        if all(body.get("status") == "waiting" for body in done):
            break
        time.sleep(0.1)
    client.close()
    _, end = scraper.scrape()
    scraper.close()
    own = httpx.get(f"{process.url}/__sim/metrics", timeout=10).json()
    page = families(f"{process.url}/metrics")

    # Served as Coder's: names, labels, buckets, reasons.
    model = page[names.MODEL_STAGE_DURATION]
    for sample in model.samples:
        if sample.name.endswith("_bucket"):
            assert set(sample.labels) == {"stage", "provider_type", "chat_kind", "model", "le"}
            assert sample.labels["stage"] in names.MODEL_STAGES
    anomalies = page[names.STAGE_ANOMALIES]
    reasons = {s.labels["reason"] for s in anomalies.samples if s.name.endswith("_total")}
    assert reasons == set(names.ANOMALY_REASONS)
    wait = page[names.CAPACITY_WAIT]
    les = [s.labels["le"] for s in wait.samples if s.name.endswith("_bucket")]
    assert [float(le) for le in les] == [*names.CAPACITY_WAIT_BUCKETS, float("inf")]

    # Read whole: what the reader makes of two scrapes is what the simulator counted.
    figures = server_figures(start, end)
    assert set(figures["stages"]) == set(own["stages"])
    for stage, tally in own["stages"].items():
        assert figures["stages"][stage]["count"] == tally["count"], stage
    assert own["stages"]["stream"]["count"] >= 3
    streams = own["model_stages"]["stream"]
    assert {m: f["count"] for m, f in figures["model_stages"]["stream"].items()} == {
        m: f["count"] for m, f in streams.items()
    }
    assert figures["stage_anomalies"] == own["stage_anomalies"]
    assert figures["capacity_wait"]["count"] == own["capacity_wait"]["count"] >= 2
    assert figures["capacity_wait"]["sum_s"] == pytest.approx(own["capacity_wait"]["sum_s"])
    new = {names.MODEL_STAGE_DURATION, names.STAGE_ANOMALIES_TOTAL, names.CAPACITY_WAIT}
    assert not new & set(figures["missing"])
