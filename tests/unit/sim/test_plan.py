"""The simulator's pure core, without a server: event shapes, plans, config."""

from __future__ import annotations

import random

import pytest

from loadtest.config import Distribution, patched
from loadtest.protocol.eras import Era
from loadtest.protocol.models import (
    ChatMessagePart,
    ChatStreamEvent,
    ChatStreamMessagePart,
)
from loadtest.sim.config import SimConfig
from loadtest.sim.events import Episode, Events
from loadtest.sim.plan import plan, retry_delay_s

CHAT = "6e0a4d0e-8d8c-4c2e-9d4f-000000000001"


@pytest.mark.parametrize("era", [Era.A, Era.B, Era.D])
def test_hand_built_text_part_is_the_model_form(era: Era) -> None:
    events = Events(era)
    episode = Episode()
    episode.transaction()
    episode.history_changed()
    episode.transaction()
    episode.attempt_recorded()
    built = events.text_part(CHAT, "text", "hi", episode)
    stream_part = ChatStreamMessagePart(
        role="assistant", part=ChatMessagePart(type="text", text="hi")
    )
    if era is Era.D:
        stream_part.history_version, stream_part.generation_attempt, stream_part.seq = 1, 1, 1
    model = ChatStreamEvent(type="message_part", chat_id=CHAT, message_part=stream_part)
    assert built == model.wire()
    burst = events.text_parts(CHAT, [("reasoning", "a"), ("text", "b")], Episode())
    singles = [
        events.text_part(CHAT, k, t, e)
        for (k, t), e in zip(
            [("reasoning", "a"), ("text", "b")], [Episode(), Episode()], strict=True
        )
    ]
    if era is not Era.D:
        assert burst == singles
    assert [e["message_part"]["part"]["type"] for e in burst] == ["reasoning", "text"]


def test_distributions() -> None:
    rng = random.Random(1)
    assert Distribution.parse("250") == Distribution(dist="constant", value=250)
    assert Distribution.parse("uniform:10,20").sample(rng) <= 20
    lognormal = Distribution.parse("lognormal:300,0.5")
    samples = sorted(lognormal.sample(rng) for _ in range(2001))
    assert 250 < samples[1000] < 360, "the median is p50"
    with pytest.raises(ValueError):
        Distribution.parse("gamma:1")
    with pytest.raises(ValueError):
        Distribution(dist="uniform", min=5, max=1)


def test_patch_merges_and_null_resets() -> None:
    config = patched(SimConfig(), {"faults": {"drop_rate": 0.5}, "parts_per_turn": 3})
    assert (config.faults.drop_rate, config.faults.stall_ms, config.parts_per_turn) == (
        0.5,
        2000,
        3,
    )
    assert patched(config, {"parts_per_turn": None}).parts_per_turn == 20


def test_retry_backoff_is_coders() -> None:
    assert [retry_delay_s(n) for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_plan() -> None:
    config = SimConfig(parts_per_turn=4, tool_steps=2, reasoning_parts=1, part_chars=5)
    turn = plan(config, random.Random(3), "openai")
    # Each tool step ends in its call; the last step calls none (section 10.4).
    assert [step.call for step in turn.steps] == ["execute", "execute", None]
    assert len(turn.steps[0].reasoning) == 1 and len(turn.steps[1].reasoning) == 0
    assert all(len(text) == 5 for step in turn.steps for text in step.text)
    assert turn.failure is None and turn.fault is None
    failing = plan(SimConfig(error_rate=1, error_retries=25), random.Random(3), "openai")
    assert failing.final_failure and failing.failure is not None
    assert failing.failure.status_code == 529


def test_the_agent_gate_has_coders_unlicensed_pools() -> None:
    assert SimConfig().pool_limit(False) is None  # no gate
    gated = SimConfig(agent_gate=True)
    assert (gated.pool_limit(False), gated.pool_limit(True)) == (5, 10)
    assert SimConfig(agent_limit=2).pool_limit(True) == 10
