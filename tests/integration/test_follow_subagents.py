"""``follow_subagents``: a child's own stream read against the simulator, as a user clicking
"View agent". The simulator starts no sub-agents yet, so a chat created here stands in for a
child its parent's ``spawn_agent`` started: the same stream, the same figures."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import locust  # noqa: F401  (gevent's patching, as in every Locust process: the reader yields)
import pytest

from loadtest.core.steps import Subagents
from loadtest.locust import runtime
from loadtest.locust.driver import follow_child
from loadtest.protocol.eras import Era
from loadtest.runner.processes import SimProcess
from loadtest.scenario import Scenario

MS = 1_000_000


@pytest.fixture
def sim() -> Iterator[tuple[str, str]]:
    token = secrets.token_urlsafe(18)
    process = SimProcess.start(
        "d",
        token,
        {
            "ttft_ms": {"dist": "constant", "value": 200},
            "parts_per_turn": 5,
            "part_gap_ms": {"dist": "constant", "value": 20},
            "rate_limit_per_minute": -1,
        },
        quiet=True,
    )
    yield process.url, token
    process.stop()


def test_a_followed_child_is_timed_from_its_spawn_to_its_end(sim: tuple[str, str]) -> None:
    url, token = sim
    scenario = Scenario.model_validate({"chat": {"turn_timeout": 30}})
    rt = runtime.install(runtime.RunSettings(scenario=scenario, host=url, era=Era.D), [token])
    client = rt.client(rt.identity())
    children = Subagents(rt.recorder)
    children.watch("parent")
    spawned_at = time.perf_counter_ns()
    children.spawn_call("parent", spawned_at)
    organization = (client.me().get("organization_ids") or [None])[0]
    chat, _ = client.create_chat("Reply with one short sentence.", organization)
    children.created(chat.id, "parent", chat.status, time.perf_counter_ns())
    started = time.perf_counter_ns()
    follow_child(rt, client, children, chat.id, spawned_at)
    took_ms = (time.perf_counter_ns() - started) / MS
    client.close()
    counts, latency = rt.recorder.counts, rt.recorder.latency
    assert counts["subagents_spawned"] == 1 and counts["subagents_followed"] == 1
    assert counts["subagents_failed"] == 0 and not rt.recorder.errors
    first, duration = latency["subagent_time_to_first_output"], latency["subagent_duration"]
    assert first.count == 1 and duration.count == 1
    # Its first part comes after the simulated 200 ms to first token; it ends after its
    # 5 parts, 20 ms apart; and the follow returns once it has ended, not at the timeout.
    assert first.min >= 200_000 and duration.min >= 80_000
    assert took_ms < 10_000
    # The child's turn is not one of the run's turns; its stream is one of the run's.
    assert counts["turns_started"] == 0 and counts["streams_opened"] == 1
