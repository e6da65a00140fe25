"""One replica of a simulated Coder cluster: state in PostgreSQL, notifies over pubsub, relayed parts.

As Coder's replicas do (coderd/x/chatd/ARCHITECTURE.md; spec §8.8, §9.4): the replica
running a chat (its worker) writes each transaction's outcome to the shared database (the
chat's row with its versions, its messages with their revisions) and publishes a notify on
the chat's channel; a stream open on another replica is a ``mirror.StreamLoop`` that syncs
from the database on each notify (the notify is only a hint) and gets the ``message_part``s
of the episode under way through the worker's ``/stream/parts`` relay (``relay.py``), which
serves them from the worker's message part buffer. A chat whose worker stops heartbeating is
taken over by another replica once its lease expires, and its turn runs again there.

Simplifications (ours, not Coder's): a chat runs on the replica that created it; REST calls
about a chat on another replica are forwarded to its worker (Coder writes the database and
lets the worker's subscription notice); message ids count per replica, and a replica that
takes a chat over continues above its last one; the notify is still the seed's
``ChatStreamNotifyMessage`` (spec §8.8), not chatd's versioned ``chat:update`` payload.
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

from loadtest.protocol.events import (
    ERROR,
    HISTORY_RESET,
    MESSAGE,
    MESSAGE_PART,
    QUEUE_UPDATE,
    RETRY,
    STATUS,
)
from loadtest.protocol.models import ChatMessage
from loadtest.protocol.notify import (
    COLOSSAL_BYTES,
    NOTIFY_PAYLOAD_LIMIT,
    ChatStreamNotifyMessage,
    stream_channel,
)
from loadtest.pubsub.bus import Pubsub, connect
from loadtest.sim.chat_state import ACTIVE, ChatState
from loadtest.sim.cluster.config import Cluster, ReplicaCounts, ReplicaSettings
from loadtest.sim.cluster.mirror import StreamLoop
from loadtest.sim.cluster.relay import PartBuffer
from loadtest.sim.events import FRAME_BREAK, MARK, Event
from loadtest.sim.faults import NOTIFY_DELAY, NOTIFY_DROP
from loadtest.sim.hub import Hub, Subscriber

log = logging.getLogger("chatload.sim")

#: Reading connections of a replica (its stream loops sync concurrently).
READERS: Final = 4


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
        #: Reading connections, each lent to one query at a time (stream loops sync at once).
        self._readers: asyncio.Queue[Any] = asyncio.Queue()
        self._opened: list[Any] = []
        self.pubsub: Pubsub | None = None
        self._outbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        #: The parts our chats generate, by episode, for other replicas' relays.
        self.parts = PartBuffer()
        #: Streams here of chats another replica runs: chat id -> their loops.
        self.loops: dict[str, list[StreamLoop]] = {}
        #: Message ids of each of our chats already written (an edit marks the rest deleted).
        self._written: dict[str, set[int]] = {}
        self._http: Any = None
        self._urls: dict[str, str] = {}

    # ------------------------------------------------------------ life

    async def start(self, url: str) -> None:
        import httpx
        import psycopg

        self.url = url
        self._db = await psycopg.AsyncConnection.connect(
            self.settings.database_url, autocommit=True
        )
        for _ in range(READERS):
            reader = await psycopg.AsyncConnection.connect(
                self.settings.database_url, autocommit=True
            )
            self._opened.append(reader)
            self._readers.put_nowait(reader)
        self.pubsub = await connect(self.settings.pubsub_url)
        self._http = httpx.AsyncClient(timeout=30.0)
        await self._heartbeat_once()
        for job in (self._drain_outbox(), self._heartbeats(), self._takeovers()):
            self._tasks.append(asyncio.create_task(job))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for loops in list(self.loops.values()):
            for loop in list(loops):
                await loop.close()
        for resource in (self.pubsub, self._http, self._db, *self._opened):
            if resource is not None:
                with contextlib.suppress(Exception):
                    await (resource.aclose() if hasattr(resource, "aclose") else resource.close())

    async def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the shared state (on a reading connection of the pool, waiting for one)."""
        reader = await self._readers.get()
        try:
            cursor = await reader.execute(sql, params)
            return list(await cursor.fetchall())
        finally:
            self._readers.put_nowait(reader)

    # ------------------------------------------------------------ the worker's side

    def changed(self, chat: ChatState, kind: str) -> None:
        """A chat of ours changed as a chat list shows it; a new one gets its row."""
        if kind == "created":
            self._outbox.put_nowait(("chat", chat.id, chat.owner_id, self._chat_row(chat)))

    def _chat_row(self, chat: ChatState) -> dict[str, Any]:
        return {"title": chat.title, "model_config_id": chat.model_config_id}

    def tap(self, chat_id: str, events: list[Event]) -> None:
        """Every event our hub publishes for a chat we run, in order. A transaction's (all
        but parts and notes) is written to the database with the chat's state as it is now,
        then announced; parts reach other replicas through the part buffer and its relay."""
        chat = self.sim.store.chats.get(chat_id)
        if chat is None or all(_note(e) or e["type"] == MESSAGE_PART for e in events):
            return  # parts alone (and notes): no transaction
        episode = chat.episode
        written = self._written.setdefault(chat_id, set())
        messages = [e for e in events if e["type"] == MESSAGE]
        kept = {m.id for m in chat.messages}
        deleted = sorted(written - kept) if any(e["type"] == HISTORY_RESET for e in events) else []
        written.difference_update(deleted)
        written.update(e["message"]["id"] for e in messages)
        notify = self._notify(events, messages, deleted)
        error = chat.last_error.chat_error().wire() if chat.last_error is not None else None
        if error is not None and self.settings.legacy:  # the old version knows only the text
            error = {"message": error.get("message", "")}
        retry = chat.retry_event["retry"] if chat.retry_event is not None else None
        state = (
            chat.status,
            episode.snapshot,
            episode.history,
            episode.attempt,
            episode.queue,
            [q.wire() for q in chat.queue],
            chat.queue_changed,
            error,
            retry,
            episode.retry,
            [call.wire() for call in chat.needs] if chat.status == "requires_action" else None,
        )
        self._outbox.put_nowait(("sync", chat_id, state, messages, deleted, notify))

    def _notify(
        self, events: list[Event], messages: list[Event], deleted: list[int]
    ) -> ChatStreamNotifyMessage:
        """The hint a transaction publishes (the seed's struct; a loop reads the database
        whatever it says). A legacy replica's carries the error's text only."""
        hints: dict[str, Any] = {}
        if deleted:
            hints["full_refresh"] = True
        elif messages:
            hints["after_message_id"] = messages[0]["message"]["id"] - 1
        for event in events:
            kind = event["type"]
            if kind == STATUS:
                hints["status"] = event["status"]["status"]
                hints["worker_id"] = self.worker_id
            elif kind == RETRY:
                hints["retry"] = event["retry"]
            elif kind == ERROR:
                error = event["error"]
                hints["error"] = error.get("message", "")
                if not self.settings.legacy:
                    hints["error_payload"] = error
            elif kind == QUEUE_UPDATE:
                hints[QUEUE_UPDATE] = True
        return ChatStreamNotifyMessage.model_validate(hints)

    async def _drain_outbox(self) -> None:
        """Write and notify in the order things happened: a subscriber re-reading after a
        notify finds what it announces."""
        while True:
            item = await self._outbox.get()
            try:
                await self._apply(item)
            except Exception:  # a failed write must not stop the replica
                log.exception("replica %d: writing %s failed", self.settings.index, item[0])

    async def written(self) -> None:
        """Wait until what was queued for the database so far is written (Coder answers a
        create once its transaction committed: another replica can then find the chat)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outbox.put_nowait(("barrier", done))
        await done

    async def _apply(self, item: tuple[Any, ...]) -> None:
        kind, chat_id = item[0], item[1]
        if kind == "barrier":
            if not chat_id.done():
                chat_id.set_result(None)
            return
        db = self._db
        if kind == "chat":
            await db.execute(
                "INSERT INTO sim_chats (id, owner_id, worker_id, status, chat) "
                "VALUES (%s, %s, %s, 'running', %s) ON CONFLICT (id) DO NOTHING",
                (chat_id, item[2], self.worker_id, orjson.dumps(item[3]).decode()),
            )
            return
        if kind == "sync":
            state, messages, deleted, notify = item[2], item[3], item[4], item[5]
            await self._write(chat_id, state, messages, deleted)
            await self.publish(chat_id, notify)
        elif kind == "watch":
            owner_id, payload = item[1], item[2]
            # Issue #26368 was a watch payload over NOTIFY's limit: never ours.
            assert len(payload) < NOTIFY_PAYLOAD_LIMIT, f"watch payload of {len(payload)} bytes"
            assert self.pubsub is not None
            await self.pubsub.publish(owner_channel(owner_id), payload)
            self.tally.notifies_published += 1

    async def _write(
        self, chat_id: str, state: tuple[Any, ...], messages: list[Event], deleted: list[int]
    ) -> None:
        """One transaction's outcome, atomically: its messages (revision: the history
        version it made), the ones it deleted, and the chat's row."""
        (status, snapshot, history, attempt, queue_version, queue, queue_changed, error, retry,
         retry_version, pending) = state  # fmt: skip
        dumps = _json
        async with self._db.transaction():
            for event in messages:
                await self._db.execute(
                    "INSERT INTO sim_messages (chat_id, id, event, revision) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (chat_id, id) DO UPDATE SET "
                    "event = EXCLUDED.event, revision = EXCLUDED.revision, deleted = false",
                    (chat_id, event["message"]["id"], dumps(event), history),
                )
            if deleted:
                await self._db.execute(
                    "UPDATE sim_messages SET deleted = true, revision = %s "
                    "WHERE chat_id = %s AND id = ANY(%s)",
                    (history, chat_id, deleted),
                )
            await self._db.execute(
                "UPDATE sim_chats SET status = %s, worker_id = %s, snapshot_version = %s, "
                "history_version = %s, generation_attempt = %s, queue_version = %s, "
                "queue = %s, queue_changed = %s, last_error = %s, retry_state = %s, "
                "retry_state_version = %s, pending_actions = %s WHERE id = %s",
                (
                    status, self.worker_id, snapshot, history, attempt, queue_version,
                    dumps(queue), queue_changed, _json_or_null(error), _json_or_null(retry),
                    retry_version, _json_or_null(pending), chat_id,
                ),
            )  # fmt: skip

    async def history(self, chat_id: str, after_id: int = 0) -> list[tuple[int, Event]]:
        """A chat's committed messages after ``after_id`` as (id, ``message`` event), in order."""
        rows = await self.query(
            "SELECT id, event FROM sim_messages WHERE chat_id = %s AND id > %s "
            "AND NOT deleted ORDER BY id",
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
        faults = self.settings.faults
        drop, delay_ms = faults.rate(NOTIFY_DROP), faults.rate(NOTIFY_DELAY)
        if drop and self.rng.random() < drop:
            tally.notifies_dropped += 1
            return
        if delay_ms:
            tally.notifies_delayed += 1
            await asyncio.sleep(delay_ms / 1000)
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
            "RETURNING owner_id, chat, status, snapshot_version, history_version, "
            "generation_attempt, queue_version, retry_state_version",
            (self.worker_id, chat_id, old_worker),
        )
        row = await cursor.fetchone()
        if row is None:
            return  # another replica was first
        owner_id, info, status, *versions = row
        messages = [
            ChatMessage.model_validate(event["message"]) for _, event in await self.history(chat_id)
        ]
        self._written[chat_id] = {m.id for m in messages}
        for loop in list(self.loops.get(chat_id, ())):
            await loop.handover()  # its stream stays: this replica's own events reach it
        sim = self.sim
        store = sim.store
        chat = store.restore(
            chat_id, owner_id, info["title"], info["model_config_id"], messages, tuple(versions)
        )
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
        """Where a worker serves (a worker id is one replica index: it keeps its URL)."""
        url = self._urls.get(worker_id)
        if url is None:
            rows = await self.query(
                "SELECT url FROM sim_replicas WHERE worker_id = %s", (worker_id,)
            )
            if not rows:
                return None
            url = self._urls[worker_id] = rows[0][0]
        return url

    async def remote_chat(self, chat_id: str) -> tuple[str, str] | None:
        """(owner, worker id) of a chat another replica runs; None if none."""
        rows = await self.query(
            "SELECT owner_id, worker_id FROM sim_chats WHERE id = %s", (chat_id,)
        )
        return (rows[0][0], rows[0][1]) if rows else None

    async def stream(self, chat_id: str, after_id: int | None, token: str) -> Subscriber:
        """A stream here of a chat another replica runs: a loop of its own (Coder's stream
        loop), whose relay carries the stream's ``token``."""
        loop = StreamLoop(self, chat_id, token, after_id)
        self.loops.setdefault(chat_id, []).append(loop)
        try:
            return await loop.open()
        except BaseException:
            await loop.close()
            raise

    def loop_closed(self, loop: StreamLoop) -> None:
        loops = self.loops.get(loop.chat_id)
        if loops is not None and loop in loops:
            loops.remove(loop)
            if not loops:
                del self.loops[loop.chat_id]

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


def _note(event: Event) -> bool:
    """A mark or frame break: for this replica's streams only, never written."""
    kind = event["type"]
    return kind.startswith(MARK) or kind == FRAME_BREAK


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _json_or_null(value: Any) -> str | None:
    return None if value is None else _json(value)


class TappedHub(Hub):
    """The hub of a replica: what it publishes for a chat it runs also goes to the cluster
    (``Replica.tap``); what its stream loops send for other replicas' chats does not."""

    def __init__(self, local: dict[str, ChatState]) -> None:
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
