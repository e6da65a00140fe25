"""One replica of a simulated Coder cluster: state in PostgreSQL, notifies over pubsub, relayed parts.

As Coder's replicas do (protocol §5.1, §8.8; coderd/pubsub/chatstreamnotify.go): the
replica running a chat (its worker) writes every committed message and status to the shared
database and publishes a ``ChatStreamNotifyMessage`` on ``chat:stream:<id>``; a stream open
on another replica re-reads the messages after ``after_message_id``, emits statuses, retries
and errors from the notify itself, and gets the ``message_part``s through a relay socket to
the worker. The relay also carries a commit mark per message, the part of era D's episode
control this needs: a stream never sees a message before the parts it commits, nor parts of
the next episode before it. A chat whose worker stops heartbeating is taken over by another
replica once its lease expires, and its turn runs again there.

Simplifications (ours, not Coder's): a chat runs on the replica that created it; REST calls
about a chat on another replica are forwarded to its worker (Coder writes the database and
lets the worker's subscription notice); message ids count per replica, and a replica that
takes a chat over continues above its last one; ``action_required`` does not cross.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from typing import Any, Final

import orjson

from loadtest.protocol.models import ChatMessage
from loadtest.protocol.notify import (
    COLOSSAL_BYTES,
    NOTIFY_PAYLOAD_LIMIT,
    ChatStreamNotifyMessage,
    stream_channel,
)
from loadtest.pubsub.bus import Pubsub, connect
from loadtest.sim.chats import ACTIVE, Chat
from loadtest.sim.cluster_config import Cluster, ReplicaCounts, ReplicaSettings
from loadtest.sim.events import MARK, Event
from loadtest.sim.hub import Hub, Subscriber
from loadtest.sim.mirror import Mirror
from loadtest.sim.relay import COMMIT

log = logging.getLogger("chatload.sim")


class Replica:
    """This simulator process as one replica of a cluster (``Sim.replica``)."""

    def __init__(self, sim: Cluster, settings: ReplicaSettings) -> None:
        self.sim = sim
        self.settings = settings
        self.worker_id = settings.worker_id
        self.tally = ReplicaCounts()
        self.rng = random.Random(settings.seed)
        self.url = ""
        self._db: Any = None
        self._reader: Any = None
        self._read_lock = asyncio.Lock()
        self.pubsub: Pubsub | None = None
        self._outbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        #: Relay sockets other replicas hold on our chats: chat id -> their queues.
        self.relays: dict[str, list[asyncio.Queue[list[Event]]]] = {}
        #: Streams of chats another replica runs: chat id -> its mirror.
        self.mirrors: dict[str, Mirror] = {}
        self._http: Any = None

    # ------------------------------------------------------------ life

    async def start(self, url: str) -> None:
        import httpx
        import psycopg

        self.url = url
        self._db = await psycopg.AsyncConnection.connect(
            self.settings.database_url, autocommit=True
        )
        self._reader = await psycopg.AsyncConnection.connect(
            self.settings.database_url, autocommit=True
        )
        self.pubsub = await connect(self.settings.pubsub_url)
        self._http = httpx.AsyncClient(timeout=30.0)
        await self._heartbeat_once()
        for job in (self._drain_outbox(), self._heartbeats(), self._takeovers()):
            self._tasks.append(asyncio.create_task(job))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for mirror in list(self.mirrors.values()):
            await mirror.close()
        for resource in (self.pubsub, self._http, self._db, self._reader):
            if resource is not None:
                with contextlib.suppress(Exception):
                    await (resource.aclose() if hasattr(resource, "aclose") else resource.close())

    async def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the shared state (one reading connection, one query at a time)."""
        async with self._read_lock:
            cursor = await self._reader.execute(sql, params)
            return list(await cursor.fetchall())

    # ------------------------------------------------------------ the worker's side

    def changed(self, chat: Chat, kind: str) -> None:
        """A chat of ours changed as a chat list shows it; a new one gets its row."""
        if kind == "created":
            self._outbox.put_nowait(("chat", chat.id, chat.owner_id, self._chat_row(chat)))

    def _chat_row(self, chat: Chat) -> dict[str, Any]:
        return {"title": chat.title, "model_config_id": chat.model_config_id}

    def tap(self, chat_id: str, events: list[Event]) -> None:
        """Every event our hub publishes for a chat we run, in order: durable ones to the
        database and pubsub, parts (and integrity marks, and a commit mark per message) to
        the relays of other replicas."""
        relays = self.relays.get(chat_id)
        relayed: list[Event] = []
        # An edit re-sends the history after a history_reset: one full_refresh notify after
        # the rewritten history, instead of one per message (chatd's edit).
        refresh: list[Event] | None = (
            [] if events and events[0]["type"] == "history_reset" else None
        )
        for event in events:
            kind = event["type"]
            if kind == "message_part" or kind == "preview_reset" or kind.startswith(MARK):
                relayed.append(event)
                continue
            if kind == "message" and refresh is not None:
                refresh.append(event)
                relayed.append({"type": COMMIT, "id": event["message"]["id"]})
            elif kind == "message":
                message_id = event["message"]["id"]
                self._outbox.put_nowait(("message", chat_id, message_id, event))
                relayed.append({"type": COMMIT, "id": message_id})
            elif kind == "history_reset":
                continue
            elif kind == "status":
                if refresh is not None:  # the edit's history is complete
                    self._outbox.put_nowait(("refresh", chat_id, refresh))
                    refresh = None
                self._outbox.put_nowait(("status", chat_id, event["status"]["status"]))
            elif kind in ("error", "retry"):
                self._outbox.put_nowait((kind, chat_id, event))
            elif kind == "queue_update":
                self._outbox.put_nowait(("queue", chat_id, event))
        if relays and relayed:
            for queue in relays:
                queue.put_nowait(relayed)

    async def _drain_outbox(self) -> None:
        """Write and notify in the order things happened: a subscriber re-reading after a
        notify finds what it announces."""
        while True:
            item = await self._outbox.get()
            try:
                await self._apply(item)
            except Exception:  # a failed write must not stop the replica
                log.exception("replica %d: writing %s failed", self.settings.index, item[0])

    async def _apply(self, item: tuple[Any, ...]) -> None:
        kind, chat_id = item[0], item[1]
        db = self._db
        if kind == "chat":
            await db.execute(
                "INSERT INTO sim_chats (id, owner_id, worker_id, status, chat) "
                "VALUES (%s, %s, %s, 'running', %s) ON CONFLICT (id) DO NOTHING",
                (chat_id, item[2], self.worker_id, orjson.dumps(item[3]).decode()),
            )
            return
        if kind == "message":
            message_id, event = item[2], item[3]
            await self._insert_message(chat_id, event)
            await self.publish(chat_id, ChatStreamNotifyMessage(after_message_id=message_id - 1))
        elif kind == "refresh":  # an edit: the history is what these messages say
            history: list[Event] = item[2]
            keep = [event["message"]["id"] for event in history]
            await db.execute(
                "DELETE FROM sim_messages WHERE chat_id = %s AND NOT id = ANY(%s)",
                (chat_id, keep),
            )
            for event in history:
                await self._insert_message(chat_id, event)
            await self.publish(chat_id, ChatStreamNotifyMessage(full_refresh=True))
        elif kind == "status":
            await db.execute(
                "UPDATE sim_chats SET status = %s, worker_id = %s WHERE id = %s",
                (item[2], self.worker_id, chat_id),
            )
            notify = ChatStreamNotifyMessage(status=item[2], worker_id=self.worker_id)
            await self.publish(chat_id, notify)
        elif kind == "error":
            error = item[2]["error"]
            await db.execute(
                "UPDATE sim_chats SET last_error = %s WHERE id = %s",
                (orjson.dumps(error).decode(), chat_id),
            )
            message = error.get("message", "")
            if self.settings.legacy:  # the old version knows only the string
                await self.publish(chat_id, ChatStreamNotifyMessage(error=message))
            else:
                payload = ChatStreamNotifyMessage.model_validate(
                    {"error_payload": error, "error": message}
                )
                await self.publish(chat_id, payload)
        elif kind == "retry":
            await self.publish(
                chat_id, ChatStreamNotifyMessage.model_validate({"retry": item[2]["retry"]})
            )
        elif kind == "watch":
            owner_id, payload = item[1], item[2]
            # Issue #26368 was a watch payload over NOTIFY's limit: never ours.
            assert len(payload) < NOTIFY_PAYLOAD_LIMIT, f"watch payload of {len(payload)} bytes"
            assert self.pubsub is not None
            await self.pubsub.publish(owner_channel(owner_id), payload)
            self.tally.notifies_published += 1
        elif kind == "queue":
            queue = item[2].get("queued_messages") or []
            await db.execute(
                "UPDATE sim_chats SET queue = %s, queue_changed = true WHERE id = %s",
                (orjson.dumps(queue).decode(), chat_id),
            )
            await self.publish(chat_id, ChatStreamNotifyMessage(queue_update=True))

    async def _insert_message(self, chat_id: str, event: Event) -> None:
        """A committed message, as the ``message`` event its streams get."""
        await self._db.execute(
            "INSERT INTO sim_messages (chat_id, id, event) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (chat_id, event["message"]["id"], orjson.dumps(event).decode()),
        )

    async def history(self, chat_id: str, after_id: int = 0) -> list[tuple[int, Event]]:
        """A chat's committed messages after ``after_id`` as (id, ``message`` event), in order."""
        rows = await self.query(
            "SELECT id, event FROM sim_messages WHERE chat_id = %s AND id > %s ORDER BY id",
            (chat_id, after_id),
        )
        return [(row[0], row[1]) for row in rows]

    async def publish(self, chat_id: str, notify: ChatStreamNotifyMessage) -> None:
        """One notify, with this replica's pubsub faults; never over PostgreSQL's limit."""
        assert self.pubsub is not None
        payload = notify.encode()
        size = len(payload)
        # Every payload fits NOTIFY (issue #26368 was one that did not): a bug of ours if not.
        assert size < NOTIFY_PAYLOAD_LIMIT, f"notify of {size} bytes"
        tally = self.tally
        tally.notify_bytes_max = max(tally.notify_bytes_max, size)
        if size >= COLOSSAL_BYTES:
            tally.notifies_colossal += 1
        settings = self.settings
        if settings.notify_drop_rate and self.rng.random() < settings.notify_drop_rate:
            tally.notifies_dropped += 1
            return
        if settings.notify_delay_ms:
            tally.notifies_delayed += 1
            await asyncio.sleep(settings.notify_delay_ms / 1000)
        await self.pubsub.publish(stream_channel(chat_id), payload)
        tally.notifies_published += 1

    # ------------------------------------------------------------ the chat list

    def watch_event(self, owner_id: str, payload: bytes) -> None:
        """A chat-list change of ours: to every replica's watch sockets of its owner,
        through ``chat:owner:<owner_id>`` (Coder's channel)."""
        self._outbox.put_nowait(("watch", owner_id, payload))

    def watching(self, owner_id: str, wanted: bool) -> None:
        """This replica's first watch socket of an owner opened, or its last closed."""
        assert self.pubsub is not None
        pubsub, channel = self.pubsub, owner_channel(owner_id)
        job = pubsub.subscribe if wanted else pubsub.unsubscribe
        self._tasks.append(asyncio.create_task(job(channel, self._watched)))

    def _watched(self, channel: str, payload: bytes) -> None:
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            log.warning("bad watch payload on %s", channel)
            return
        self.sim.watch.deliver(channel.removeprefix(OWNER_PREFIX), event.get("kind", ""), payload)

    # ------------------------------------------------------------ leases

    async def _heartbeat_once(self) -> None:
        await self._db.execute(
            "INSERT INTO sim_replicas (worker_id, url, heartbeat) VALUES (%s, %s, now()) "
            "ON CONFLICT (worker_id) DO UPDATE SET url = EXCLUDED.url, heartbeat = now()",
            (self.worker_id, self.url),
        )

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_s / 4)
            try:
                await self._heartbeat_once()
            except Exception:
                log.exception("replica %d: heartbeat failed", self.settings.index)

    async def _takeovers(self) -> None:
        """Claim the chats of a worker whose heartbeat is older than the lease: a running
        one runs its turn again here, an idle one waits here for its next message."""
        while True:
            await asyncio.sleep(self.settings.lease_s / 4)
            try:
                stale = await self.query(
                    "SELECT c.id::text, c.worker_id FROM sim_chats c "
                    "JOIN sim_replicas r ON r.worker_id = c.worker_id "
                    "WHERE c.worker_id <> %s AND r.heartbeat < now() - make_interval(secs => %s)",
                    (self.worker_id, self.settings.lease_s),
                )
                for chat_id, old in stale:
                    await self._take_over(chat_id, old)
            except Exception:
                log.exception("replica %d: takeover check failed", self.settings.index)

    async def _take_over(self, chat_id: str, old_worker: str) -> None:
        cursor = await self._db.execute(
            "UPDATE sim_chats SET worker_id = %s WHERE id = %s AND worker_id = %s "
            "RETURNING owner_id, chat, status",
            (self.worker_id, chat_id, old_worker),
        )
        row = await cursor.fetchone()
        if row is None:
            return  # another replica was first
        owner_id, info, status = row
        messages = [
            ChatMessage.model_validate(event["message"]) for _, event in await self.history(chat_id)
        ]
        mirror = self.mirrors.pop(chat_id, None)
        if mirror is not None:
            await mirror.close()  # its streams stay: this replica's own events reach them
        sim = self.sim
        store = sim.store
        chat = store.restore(chat_id, owner_id, info["title"], info["model_config_id"], messages)
        self.tally.chats_taken_over += 1
        log.info("replica %d took over chat %s (%s)", self.settings.index, chat_id, status)
        # What the history says, not the status (its write may have died with the worker):
        # a user message with no answer after it is a turn to run again.
        unanswered = bool(chat.messages) and chat.messages[-1].role == "user"
        if unanswered:
            sim.hub.publish(chat_id, store.taken_over(chat))
            sim.player.start(chat)
        elif status in ACTIVE:
            sim.hub.publish(chat_id, store.finish_turn(chat, promote=False)[0])
        else:
            chat.status = status

    # ------------------------------------------------------------ another replica's chats

    async def worker_url(self, worker_id: str) -> str | None:
        rows = await self.query("SELECT url FROM sim_replicas WHERE worker_id = %s", (worker_id,))
        return rows[0][0] if rows else None

    async def remote_chat(self, chat_id: str) -> tuple[str, str] | None:
        """(owner, worker id) of a chat another replica runs; None if none."""
        rows = await self.query(
            "SELECT owner_id, worker_id FROM sim_chats WHERE id = %s", (chat_id,)
        )
        return (rows[0][0], rows[0][1]) if rows else None

    async def stream(
        self, chat_id: str, after_id: int | None, credentials: dict[str, str]
    ) -> Subscriber:
        """A stream here of a chat another replica runs; ``credentials`` (the stream's own
        auth headers) go with the relay, as Coder's relay forwards them."""
        mirror = self.mirrors.get(chat_id)
        if mirror is None:
            mirror = self.mirrors[chat_id] = Mirror(self, chat_id, credentials)
            await mirror.start()
        return await mirror.subscribe(after_id)

    async def forward(
        self, chat_id: str, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes, str] | None:
        """A REST call about a chat another replica runs, handed to that replica. While
        that replica is unreachable the call waits (up to twice the lease) for a survivor
        to take the chat over, as a message to Coder waits for a worker; None when this
        replica took it: the caller answers itself."""
        import httpx

        keep = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
        deadline = time.monotonic() + 2 * self.settings.lease_s + 1
        while True:
            if chat_id in self.sim.store.chats:
                return None
            found = await self.remote_chat(chat_id)
            url = await self.worker_url(found[1]) if found is not None else None
            if url is not None:
                try:
                    reply = await self._http.request(method, url + path, headers=keep, content=body)
                except httpx.TransportError:
                    pass
                else:
                    media = reply.headers.get("content-type", "application/json")
                    return reply.status_code, reply.content, media
            if time.monotonic() > deadline:
                return 503, b'{"message":"The chat\'s replica is unavailable."}', "application/json"
            await asyncio.sleep(self.settings.lease_s / 4)

    def counts(self) -> dict[str, Any]:
        return {
            "streams_open": sum(len(subs) for subs in self.sim.hub.subscribers.values()),
            "index": self.settings.index,
            "worker_id": self.worker_id,
            "legacy": self.settings.legacy,
            "pid": os.getpid(),
            **self.tally.wire(),
        }


#: Coder's channel of a user's chat-list changes (``/chats/watch``).
OWNER_PREFIX: Final = "chat:owner:"


def owner_channel(owner_id: str) -> str:
    return OWNER_PREFIX + owner_id


class TappedHub(Hub):
    """The hub of a replica: what it publishes for a chat it runs also goes to the cluster
    (``Replica.tap``); what its mirrors publish for other replicas' chats does not."""

    def __init__(self, local: dict[str, Chat]) -> None:
        super().__init__()
        self._local = local
        self.replica: Replica | None = None

    def publish(self, chat_id: str, events: list[Event]) -> None:
        if self.replica is not None and chat_id in self._local:
            self.replica.tap(chat_id, events)
        super().publish(chat_id, events)

    def publish_burst(self, chat_id: str, kind: str, events: list[Event]) -> None:
        if self.replica is not None and chat_id in self._local:
            self.replica.tap(chat_id, events)
        super().publish_burst(chat_id, kind, events)

    def publish_one(self, chat_id: str, event: Event) -> None:
        if self.replica is not None and chat_id in self._local:
            self.replica.tap(chat_id, [event])
        super().publish_one(chat_id, event)
