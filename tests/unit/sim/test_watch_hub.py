"""The watch hub: each owner's tabs get their own chats' changes, in the era's envelope; a
replica sends them through the pubsub and says whose it wants."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from loadtest.protocol.eras import Era
from loadtest.sim.chat_state import ChatState
from loadtest.sim.watch_hub import WatchHub

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_only_the_owners_tabs_get_a_change_in_the_eras_shape() -> None:
    for era in (Era.A, Era.D):
        hub = WatchHub(era)
        mine, theirs = hub.subscribe("alice"), hub.subscribe("bob")
        chat = ChatState("alice", "t", "m", NOW)
        hub.publish(chat, "status_change")
        assert not theirs.queue and len(mine.queue) == 1
        kind, frame = mine.queue[0]
        body = orjson.loads(frame)
        event = body["data"] if era is Era.A else body
        assert kind == "status_change" and body.get("type") == ("data" if era is Era.A else None)
        assert event["kind"] == "status_change" and event["chat"]["id"] == chat.id


def test_a_replica_broadcasts_and_learns_whose_events_its_tabs_want() -> None:
    hub = WatchHub(Era.D)
    sent: list[tuple[str, bytes]] = []
    wanted: list[tuple[str, bool]] = []
    hub.broadcast = lambda owner, data: sent.append((owner, data))
    hub.on_owner = lambda owner, on: wanted.append((owner, on))
    first, second = hub.subscribe("alice"), hub.subscribe("alice")
    hub.publish(ChatState("carol", "t", "m", NOW), "created")  # no tab here: still broadcast
    assert [owner for owner, _ in sent] == ["carol"] and not first.queue
    hub.unsubscribe(first)
    hub.unsubscribe(second)
    assert wanted == [("alice", True), ("alice", False)]
    assert first.closed and first.wake.is_set() and "alice" not in hub.sockets
