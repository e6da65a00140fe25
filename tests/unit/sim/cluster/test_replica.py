"""A replica's side that needs no database: its hub taps only the chats it runs, the
chat-list channel is Coder's, a watched owner's channel is joined and left on the pubsub, and
its counts name it."""

from __future__ import annotations

import asyncio
from typing import Any

from loadtest.protocol.eras import Era
from loadtest.protocol.models import ChatMessagePart
from loadtest.sim.cluster.config import ReplicaSettings
from loadtest.sim.cluster.replica import TappedHub, owner_channel
from loadtest.sim.config import SimConfig
from loadtest.sim.state import Sim
from tests.unit.sim.apps import USER
from tests.unit.sim.cluster.fakes import MemoryPubsub


def settings(**kw: Any) -> ReplicaSettings:
    return ReplicaSettings(
        index=2, count=3, database_url="postgresql://x", pubsub_url="nats://x", **kw
    )


def test_the_hub_taps_what_it_publishes_for_its_own_chats_only() -> None:
    sim = Sim(Era.D, SimConfig.model_validate({"seed": 1}), None)
    replica = sim.join_cluster(settings())
    assert isinstance(sim.hub, TappedHub) and sim.hub.replica is replica
    tapped: list[tuple[str, int]] = []
    replica.tap = lambda chat_id, events: tapped.append((chat_id, len(events)))  # type: ignore[method-assign]
    model = sim.catalog.default_model()
    assert model is not None
    chat, _ = sim.store.create(USER, [ChatMessagePart(type="text", text="hi")], model.id)
    event = {"type": "status", "chat_id": chat.id, "status": {"status": "running"}}
    sim.hub.publish(chat.id, [event, event])
    sim.hub.publish_one(chat.id, event)
    sim.hub.publish_burst(chat.id, "status", [event])
    sim.hub.publish("another-replicas-chat", [event])
    assert tapped == [(chat.id, 2), (chat.id, 1), (chat.id, 1)]


def test_the_chat_list_channel_is_coders() -> None:
    assert owner_channel("u1") == "chat:owner:u1"


def test_a_watched_owners_channel_is_joined_then_left_and_its_events_reach_the_tabs() -> None:
    async def scenario() -> None:
        sim = Sim(Era.D, SimConfig.model_validate({"seed": 1}), None)
        replica = sim.join_cluster(settings())
        pubsub = replica.pubsub = MemoryPubsub()
        tab = sim.watch.subscribe("u1")  # the first tab: this replica wants u1's changes
        await asyncio.sleep(0)
        assert "chat:owner:u1" in pubsub.listening
        await pubsub.publish("chat:owner:u1", b'{"kind":"status_change","chat":{}}')
        await pubsub.publish("chat:owner:u1", b"not json")  # logged, nothing delivered
        assert [kind for kind, _ in tab.queue] == ["status_change"]
        sim.watch.unsubscribe(tab)
        await asyncio.sleep(0)
        assert "chat:owner:u1" not in pubsub.listening

    asyncio.run(scenario())


def test_its_counts_name_the_replica() -> None:
    sim = Sim(Era.D, SimConfig.model_validate({"seed": 1}), None)
    counts = sim.join_cluster(settings(legacy=True)).counts()
    assert (counts["index"], counts["legacy"], counts["streams_open"]) == (2, True, 0)
    assert counts["worker_id"] == "00000000-0000-4000-8000-000000000002"
