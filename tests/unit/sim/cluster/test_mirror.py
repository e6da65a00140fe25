"""A stream loop of a chat another replica runs, driven with fakes for its database and
pubsub: the snapshot it builds from the chat's row and messages, a notify making it sync
what changed (status, error, preview_reset), and its close leaving the channel."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from loadtest.protocol.eras import Era
from loadtest.protocol.notify import stream_channel
from loadtest.pubsub.bus import Pubsub
from loadtest.sim.cluster.config import ReplicaCounts, ReplicaSettings
from loadtest.sim.cluster.mirror import StreamLoop
from loadtest.sim.config import SimConfig
from loadtest.sim.state import Sim
from tests.unit.sim.cluster.fakes import MemoryPubsub

CHAT = "c1"


class FakeReplica:
    """The loop's host: the chat's row and messages as the database would return them."""

    def __init__(self) -> None:
        self.settings = ReplicaSettings(
            index=1, count=2, database_url="postgresql://x", pubsub_url="nats://x"
        )
        self.tally = ReplicaCounts()
        self.rng = random.Random(1)
        self.pubsub: Pubsub | None = MemoryPubsub()
        self.sim = Sim(Era.D, SimConfig.model_validate({"seed": 1}), None)
        self.worker_id = self.settings.worker_id
        # status, worker, snapshot, history, attempt, queue version, queue, last_error,
        # retry_state, retry version, pending actions (worker "": no relay to dial).
        self.row: list[Any] = ["running", "", 2, 1, 0, 0, [], None, None, 0, None]
        #: (id, event, deleted, revision)
        self.messages: list[tuple[int, dict[str, Any], bool, int]] = []
        self.closed: list[StreamLoop] = []

    async def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if "FROM sim_chats" in sql:
            return [tuple(self.row)]
        assert "FROM sim_messages" in sql and "revision > %s" in sql
        _, low, high = params
        return [m for m in self.messages if low < m[3] <= high]

    async def worker_url(self, worker_id: str) -> str | None:
        return None

    def loop_closed(self, loop: StreamLoop) -> None:
        self.closed.append(loop)


def message(message_id: int, role: str = "user") -> dict[str, Any]:
    return {"type": "message", "chat_id": CHAT, "message": {"id": message_id, "role": role}}


def kinds(items: list[tuple[str, Any, int]]) -> list[str]:
    return [kind for kind, _, _ in items]


async def until(condition: Any) -> None:
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the loop never got there")


def test_the_snapshot_is_the_rows_state_in_coders_sync_order() -> None:
    async def scenario() -> None:
        replica = FakeReplica()
        replica.messages = [(1, message(1), False, 1)]
        loop = StreamLoop(replica, CHAT, "token", None)
        sub = await loop.open()
        assert kinds(list(sub.queue)) == ["message", "status", "preview_reset"]
        assert stream_channel(CHAT) in replica.pubsub.listening  # type: ignore[union-attr]
        await loop.close()
        assert replica.closed == [loop]
        assert stream_channel(CHAT) not in replica.pubsub.listening  # type: ignore[union-attr]

    asyncio.run(scenario())


def test_after_id_leaves_out_messages_the_client_has() -> None:
    async def scenario() -> None:
        replica = FakeReplica()
        replica.messages = [(1, message(1), False, 1), (2, message(2, "assistant"), False, 1)]
        loop = StreamLoop(replica, CHAT, "token", after_id=1)
        sub = await loop.open()
        sent = [data for kind, data, _ in sub.queue if kind == "message"]
        assert len(sent) == 1 and b'"id":2' in sent[0]
        await loop.close()

    asyncio.run(scenario())


def test_a_notify_syncs_only_what_changed_and_an_error_arrives_after_its_status() -> None:
    async def scenario() -> None:
        replica = FakeReplica()
        loop = StreamLoop(replica, CHAT, "token", None)
        sub = await loop.open()
        sub.queue.clear()
        # Nothing new in the row: a notify (only a hint) adds nothing to what follows.
        await replica.pubsub.publish(stream_channel(CHAT), b"{}")  # type: ignore[union-attr]
        replica.messages.append((2, message(2, "assistant"), False, 3))
        replica.row[:4] = ["error", "", 3, 3]
        replica.row[7] = {"message": "boom", "kind": "overloaded"}
        await replica.pubsub.publish(stream_channel(CHAT), b"{}")  # type: ignore[union-attr]
        await until(lambda: len(sub.queue) >= 4)
        assert kinds(list(sub.queue)) == ["message", "status", "error", "preview_reset"]
        replica.sim.hub.unsubscribe(sub)  # the client left: the loop stops
        await until(lambda: replica.closed == [loop])

    asyncio.run(scenario())
