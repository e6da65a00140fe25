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
from collections import deque
from typing import Any, Final, Protocol

import orjson
from pydantic import BaseModel

from loadtest.protocol.eras import ChatPaths
from loadtest.protocol.models import ChatMessage
from loadtest.protocol.notify import (
    COLOSSAL_BYTES,
    NOTIFY_PAYLOAD_LIMIT,
    ChatStreamNotifyMessage,
    stream_channel,
)
from loadtest.pubsub.bus import Pubsub, connect
from loadtest.sim.chats import ACTIVE, Chat
from loadtest.sim.events import MARK, Event, mark
from loadtest.sim.hub import Hub, Subscriber
from loadtest.sim.player import Deployment, Player
from loadtest.sim.watch_hub import WatchHub


class Cluster(Deployment, Protocol):
    """What a replica needs of the simulated deployment it is part of (``state.Sim``): the
    seam that keeps the state, which owns its replica, from being imported here."""

    player: Player
    watch: WatchHub
    paths: ChatPaths


log = logging.getLogger("chatload.sim")

#: The replica's settings travel to its process in this environment variable (JSON).
REPLICA_ENV: Final = "CHATLOAD_SIM_REPLICA"
#: How long a stream on another replica waits for a message's relayed commit mark before it
#: emits the message anyway (the relay may be gone with its replica).
COMMIT_WAIT_S: Final = 1.0
#: How long a first stream waits for the relay's hello, and for the database to hold what
#: the hello says was committed.
HELLO_WAIT_S: Final = 2.0

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS sim_replicas (
    worker_id text PRIMARY KEY, url text NOT NULL, heartbeat timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS sim_chats (
    id uuid PRIMARY KEY, owner_id text NOT NULL, worker_id text NOT NULL, status text NOT NULL,
    chat jsonb NOT NULL, queue_changed boolean NOT NULL DEFAULT false,
    queue jsonb NOT NULL DEFAULT '[]', last_error jsonb
);
CREATE TABLE IF NOT EXISTS sim_messages (
    chat_id uuid NOT NULL, id bigint NOT NULL, event jsonb NOT NULL, PRIMARY KEY (chat_id, id)
);
"""


class ReplicaSettings(BaseModel):
    """What one replica process is told by ``chatload sim --replicas``."""

    index: int
    count: int
    database_url: str
    pubsub_url: str
    lease_s: float = 3.0
    #: A replica of the previous version: publishes and reads only the legacy ``error``.
    legacy: bool = False
    #: Faults on this replica's pubsub and relay (probabilities; a delay in ms).
    notify_drop_rate: float = 0.0
    notify_delay_ms: float = 0.0
    relay_drop_rate: float = 0.0
    relay_duplicate_rate: float = 0.0
    seed: int | None = None

    @property
    def worker_id(self) -> str:
        # A fixed id per index: a restarted replica is the same worker.
        return f"00000000-0000-4000-8000-{self.index:012d}"


class Faults:
    """What this replica broke on purpose, and its pubsub traffic (``/__sim/counts``)."""

    def __init__(self) -> None:
        self.notifies_published = 0
        self.notifies_dropped = 0
        self.notifies_delayed = 0
        self.notifies_colossal = 0
        self.notify_bytes_max = 0
        self.relay_parts_dropped = 0
        self.relay_parts_duplicated = 0
        self.chats_taken_over = 0
        #: Edits of another replica's chat that this replica's streams were refreshed for.
        self.refreshes_mirrored = 0

    def wire(self) -> dict[str, int]:
        return dict(vars(self))


class Replica:
    """This simulator process as one replica of a cluster (``Sim.replica``)."""

    def __init__(self, sim: Cluster, settings: ReplicaSettings) -> None:
        self.sim = sim
        self.settings = settings
        self.worker_id = settings.worker_id
        self.faults = Faults()
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
            elif kind == "status" and refresh is not None:
                self._outbox.put_nowait(("refresh", chat_id, refresh))
                refresh = None
                self._outbox.put_nowait(("status", chat_id, event["status"]["status"]))
            elif kind == "status":
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
            await db.execute(
                "INSERT INTO sim_messages (chat_id, id, event) VALUES (%s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                (chat_id, message_id, orjson.dumps(event).decode()),
            )
            await self.publish(chat_id, ChatStreamNotifyMessage(after_message_id=message_id - 1))
        elif kind == "refresh":  # an edit: the history is what these messages say
            history: list[Event] = item[2]
            keep = [event["message"]["id"] for event in history]
            await db.execute(
                "DELETE FROM sim_messages WHERE chat_id = %s AND NOT id = ANY(%s)",
                (chat_id, keep),
            )
            for event in history:
                await db.execute(
                    "INSERT INTO sim_messages (chat_id, id, event) VALUES (%s, %s, %s) "
                    "ON CONFLICT DO NOTHING",
                    (chat_id, event["message"]["id"], orjson.dumps(event).decode()),
                )
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
            self.faults.notifies_published += 1
        elif kind == "queue":
            queue = item[2].get("queued_messages") or []
            await db.execute(
                "UPDATE sim_chats SET queue = %s, queue_changed = true WHERE id = %s",
                (orjson.dumps(queue).decode(), chat_id),
            )
            await self.publish(chat_id, ChatStreamNotifyMessage(queue_update=True))

    async def publish(self, chat_id: str, notify: ChatStreamNotifyMessage) -> None:
        """One notify, with this replica's pubsub faults; never over PostgreSQL's limit."""
        assert self.pubsub is not None
        payload = notify.encode()
        size = len(payload)
        # Every payload fits NOTIFY (issue #26368 was one that did not): a bug of ours if not.
        assert size < NOTIFY_PAYLOAD_LIMIT, f"notify of {size} bytes"
        faults = self.faults
        faults.notify_bytes_max = max(faults.notify_bytes_max, size)
        if size >= COLOSSAL_BYTES:
            faults.notifies_colossal += 1
        settings = self.settings
        if settings.notify_drop_rate and self.rng.random() < settings.notify_drop_rate:
            faults.notifies_dropped += 1
            return
        if settings.notify_delay_ms:
            faults.notifies_delayed += 1
            await asyncio.sleep(settings.notify_delay_ms / 1000)
        await self.pubsub.publish(stream_channel(chat_id), payload)
        faults.notifies_published += 1

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
        rows = await self.query(
            "SELECT event FROM sim_messages WHERE chat_id = %s ORDER BY id", (chat_id,)
        )
        sim = self.sim
        store = sim.store
        chat = Chat(owner_id, info["title"], info["model_config_id"], store._now())
        chat.id = chat_id
        chat.messages = [ChatMessage.model_validate(r[0]["message"]) for r in rows]
        last = max((m.id for m in chat.messages), default=0)
        store.bump_message_id(last)
        # Era D: the next commit's history_version, and a new generation attempt.
        chat.episode.history = 1 + len(chat.messages)
        chat.episode.attempt += 1
        mirror = self.mirrors.pop(chat_id, None)
        if mirror is not None:
            await mirror.close(keep_streams=True)
        store.chats[chat_id] = chat
        self.faults.chats_taken_over += 1
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

    async def remote_chat(self, chat_id: str) -> tuple[str, str, str] | None:
        """(owner, worker id, status) of a chat another replica runs; None if none."""
        rows = await self.query(
            "SELECT owner_id, worker_id, status FROM sim_chats WHERE id = %s", (chat_id,)
        )
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

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
            **self.faults.wire(),
        }


#: Coder's channel of a user's chat-list changes (``/chats/watch``).
OWNER_PREFIX: Final = "chat:owner:"


def owner_channel(owner_id: str) -> str:
    return OWNER_PREFIX + owner_id


#: A relay item: "message <id> is committed here" (never sent to a client).
COMMIT: Final = "relay:commit"


class Mirror:
    """A chat another replica runs, as streams on this replica see it: durable events from
    the database and pubsub, parts from the relay, merged in the worker's order."""

    def __init__(self, replica: Replica, chat_id: str, credentials: dict[str, str]) -> None:
        self.replica = replica
        self.chat_id = chat_id
        self.credentials = credentials
        self.hub: Hub = replica.sim.hub
        self.events = replica.sim.store.events
        self.last_id = 0
        self.worker: str | None = None
        #: Durable events in notify order: ("message", id, [event]), ("event", 0, [event]) or
        #: ("refresh", newest id, [history_reset, *history]).
        self.durable: deque[tuple[str, int, list[Event]]] = deque()
        #: Relay items in the worker's order: events, and (COMMIT, id).
        self.relayed: deque[Event] = deque()
        #: The highest message id whose commit mark the relay passed (or that preceded it).
        self.committed = 0
        #: The highest message id this mirror's streams have been sent.
        self.emitted = 0
        self.relay_task: asyncio.Task[None] | None = None
        #: "connecting", "up", or "down" (its worker gone: messages go without commit marks).
        self.relay_state = "down"
        self.waiting_since: float | None = None
        #: The step under way as this mirror's streams were sent it: its text deltas and
        #: their seqs (its commit is compared with them, as a client does).
        self.text: list[str] = []
        self.seqs: set[int] = set()
        self._listening = False
        self._wake = asyncio.Event()
        self._pump_task: asyncio.Task[None] | None = None
        self._notifies: deque[bytes] = deque()
        self._ready = False
        #: Set once the first stream has its snapshot: from then on the mirror emits.
        self._live = False
        #: The first stream's snapshot waits for the relay's hello (newest id, parts).
        self._hello: asyncio.Future[tuple[int, list[Event]]] | None = None
        #: Streams reading their snapshot now: the mirror stays for them.
        self._attaching = 0
        #: The last status sent to this mirror's streams.
        self.status = ""
        #: What the streams were sent of the episode under way (a late stream gets it too).
        self.episode: list[Event] = []

    async def start(self) -> None:
        replica = self.replica
        assert replica.pubsub is not None
        await replica.pubsub.subscribe(stream_channel(self.chat_id), self._notified)
        self._listening = True
        self._pump_task = asyncio.create_task(self._pump())

    def _notified(self, _channel: str, payload: bytes) -> None:
        if self._ready:
            self._notifies.append(payload)
            self._wake.set()

    async def subscribe(self, after_id: int | None) -> Subscriber:
        """A new stream here (§8.5's snapshot order). The first one's snapshot is read from
        the database; a later one's is what this mirror has sent its streams so far, plus
        the parts of the episode under way, so it lines up with what follows live."""
        # Notifies from now on are kept: what they announce may postdate the reads below.
        self._ready = True
        self._attaching += 1
        try:
            return await self._attach(after_id)
        finally:
            self._attaching -= 1

    async def _attach(self, after_id: int | None) -> Subscriber:
        replica, events, chat_id = self.replica, self.events, self.chat_id
        rows = await replica.query(
            "SELECT status, worker_id, queue_changed, queue, last_error FROM sim_chats "
            "WHERE id = %s",
            (chat_id,),
        )
        status, worker, queue_changed, queue, last_error = rows[0]
        buffered: list[Event] = []
        relayed_from: int | None = None
        if not self._live:
            # The first stream's history ends where the relay starts: what the worker
            # committed before then is history (its parts were never relayed), what it
            # streams after is live. So the relay's hello comes before the history is read.
            hello = self._hello = asyncio.get_running_loop().create_future()
            self._relay_to(worker)
            try:
                relayed_from, buffered = await asyncio.wait_for(hello, timeout=HELLO_WAIT_S)
                await self._history_reaches(relayed_from)
            except TimeoutError:
                pass  # its worker is gone: the next one's hello goes to the relayed items
            finally:
                self._hello = None
        messages = await replica.query(
            "SELECT id, event FROM sim_messages WHERE chat_id = %s ORDER BY id", (chat_id,)
        )
        # No await from here on: the snapshot and the subscription are one step.
        local = replica.sim.store.chats.get(chat_id)
        if local is not None:  # taken over by this replica meanwhile: an ordinary stream
            history = replica.sim.store.snapshot(local, after_id)
            return self.hub.subscribe(chat_id, history, whole=True)
        if not self._live:
            newest = max((row[0] for row in messages), default=0)
            if relayed_from is not None:
                # What came after the hello is live (its parts follow in the relay).
                newest = min(newest, relayed_from)
                self.committed = relayed_from
            else:
                self.committed = newest
            self.last_id = self.emitted = newest
            self.status = status
            self._new_step()
            for part in buffered:
                self._send_to_nobody(part)
        else:
            status = self.status
        snapshot: list[Event] = [
            row[1]
            for row in messages
            if row[0] <= self.emitted and (after_id is None or row[0] > after_id)
        ]
        if queue_changed:
            update: Event = {"type": "queue_update", "chat_id": chat_id}
            if queue:
                update["queued_messages"] = queue
            snapshot.append(update)
        snapshot.append(events.status(chat_id, status))
        if status == "error" and last_error:
            if self.replica.settings.legacy:  # the old version reads only the text
                last_error = {"message": last_error.get("message", ""), "kind": "generic"}
            snapshot.append({"type": "error", "chat_id": chat_id, "error": last_error})
        snapshot.append(events.preview_reset(chat_id))
        snapshot.extend(self.episode)
        subscriber = self.hub.subscribe(chat_id, snapshot, whole=True)
        self._live = True
        self._wake.set()
        return subscriber

    async def _history_reaches(self, message_id: int) -> None:
        """Wait (bounded) until the worker's writes reach ``message_id`` in the database."""
        deadline = time.monotonic() + HELLO_WAIT_S
        while time.monotonic() < deadline:
            rows = await self.replica.query(
                "SELECT coalesce(max(id), 0) FROM sim_messages WHERE chat_id = %s",
                (self.chat_id,),
            )
            if rows[0][0] >= message_id:
                return
            await asyncio.sleep(0.01)

    def _send_to_nobody(self, part: Event) -> None:
        """A part of the episode under way, kept for the snapshot of the streams to come."""
        self.episode.append(part)
        self._add_text(part["message_part"])

    def _relay_to(self, worker: str) -> None:
        if self.worker == worker and self.relay_task is not None and not self.relay_task.done():
            return
        self.worker = worker
        if self.relay_task is not None:
            self.relay_task.cancel()
        self.relay_state = "connecting"
        self.relay_task = asyncio.create_task(self._relay(worker))

    async def _relay(self, worker: str) -> None:
        """The worker's parts, in its order, until it closes or dies."""
        from websockets.asyncio.client import connect as ws_connect

        url = await self.replica.worker_url(worker)
        if url is None:
            return
        path = self.replica.sim.paths.stream(self.chat_id) + "/parts"
        target = url.replace("http://", "ws://", 1) + path
        headers = {**self.credentials, RELAY_SOURCE_HEADER: self.replica.worker_id}
        try:
            async with ws_connect(
                target,
                additional_headers=headers,
                open_timeout=5,
                compression=None,
                max_size=None,
            ) as ws:
                self.relay_state = "up"
                async for frame in ws:
                    for item in orjson.loads(frame):
                        if item["type"] == HELLO and self._hello is not None:
                            # The first stream's snapshot is waiting for this.
                            hello, self._hello = self._hello, None
                            if not hello.done():
                                hello.set_result((item["last_message_id"], item["parts"]))
                        elif item["type"] == HELLO:
                            # A relay to a new worker (a takeover): messages up to its newest,
                            # then, as in a snapshot, preview_reset and the episode it is on.
                            self.relayed.append({"type": COMMIT, "id": item["last_message_id"]})
                            self.relayed.append(self.events.preview_reset(self.chat_id))
                            self.relayed.extend(item["parts"])
                        else:
                            self.relayed.append(item)
                    self._wake.set()
        except Exception as exc:  # the worker is gone: a status notify names the next one
            log.info("relay of chat %s from %s ended: %s", self.chat_id, worker, exc)
        finally:
            if self.relay_task is asyncio.current_task():
                self.relay_state = "down"
            self._wake.set()

    async def _pump(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=COMMIT_WAIT_S / 4)
            self._wake.clear()
            if not self._live:
                continue  # the first stream's snapshot is being read
            try:
                await self._take_notifies()
                self._emit()
            except Exception:
                log.exception("mirror of chat %s", self.chat_id)
            if not self.hub.subscribers.get(self.chat_id) and not self._attaching:
                await self.close()
                return

    async def _take_notifies(self) -> None:
        replica, events, chat_id = self.replica, self.events, self.chat_id
        legacy = replica.settings.legacy
        while self._notifies:
            try:
                notify = ChatStreamNotifyMessage.decode(self._notifies.popleft())
            except ValueError as exc:
                log.warning("chat %s: bad notify: %s", chat_id, exc)
                continue
            if notify.full_refresh:
                # An edit: the whole history again, after a history_reset (§8.5).
                rows = await replica.query(
                    "SELECT id, event FROM sim_messages WHERE chat_id = %s ORDER BY id",
                    (chat_id,),
                )
                newest = max((row[0] for row in rows), default=0)
                reset = {"type": "history_reset", "chat_id": chat_id}
                replica.faults.refreshes_mirrored += 1
                self.durable.append(("refresh", newest, [reset, *(row[1] for row in rows)]))
                self.last_id = max(self.last_id, newest)
            elif notify.after_message_id:
                rows = await replica.query(
                    "SELECT id, event FROM sim_messages WHERE chat_id = %s AND id > %s ORDER BY id",
                    (chat_id, self.last_id),
                )
                for message_id, event in rows:
                    self.durable.append(("message", message_id, [event]))
                    self.last_id = message_id
            if notify.status:
                self.durable.append(("event", 0, [events.status(chat_id, notify.status)]))
                if notify.status in ACTIVE and notify.worker_id:
                    self._relay_to(notify.worker_id)
            if notify.retry is not None:
                retry = {"type": "retry", "chat_id": chat_id, "retry": notify.retry.wire()}
                self.durable.append(("event", 0, [retry]))
            if notify.error_payload is not None and not legacy:
                error = notify.error_payload.wire()
                self.durable.append(
                    ("event", 0, [{"type": "error", "chat_id": chat_id, "error": error}])
                )
            elif notify.error:
                # A legacy replica's notify, or a legacy replica reading one: only the text,
                # which a client sees as a generic error (the seed's form, kind added).
                error = {"message": notify.error, "kind": "generic"}
                self.durable.append(
                    ("event", 0, [{"type": "error", "chat_id": chat_id, "error": error}])
                )
            if notify.queue_update:
                rows = await replica.query("SELECT queue FROM sim_chats WHERE id = %s", (chat_id,))
                queue = rows[0][0] if rows else []
                update: Event = {"type": "queue_update", "chat_id": chat_id}
                if queue:
                    update["queued_messages"] = queue
                self.durable.append(("event", 0, [update]))

    def _emit(self) -> None:
        """Relayed parts as they come; a message once the relay passed its commit mark (or
        the relay is gone, or it waited ``COMMIT_WAIT_S``); other durable events in order."""
        relayed = self.relayed
        settings = self.replica.settings
        # With relay faults on, a part waits for the next item: only a part followed by
        # another of its episode may be broken (so a client can see each break).
        hold = bool(settings.relay_drop_rate or settings.relay_duplicate_rate)
        while True:
            if relayed and relayed[0]["type"] != COMMIT:
                if hold and len(relayed) == 1 and self.relay_state == "up":
                    return
                self._emit_relayed(relayed.popleft())
                continue
            if relayed:  # a commit mark: the messages up to it go first
                upto = relayed[0]["id"]
                self.committed = max(self.committed, upto)
                if self.emitted >= upto:
                    relayed.popleft()
                    continue
                if self._emit_durable(force=False):
                    continue
                return
            if not self._emit_durable(force=self.relay_state == "down"):
                return

    def _emit_relayed(self, item: Event) -> None:
        """A part (or integrity mark, or preview_reset) from the worker, with the relay
        faults this replica plays on text parts that are not their episode's last."""
        settings, faults, rng = self.replica.settings, self.replica.faults, self.replica.rng
        out = [item]
        if item["type"] == "message_part" and _is_text(item) and self._more_of_episode(item):
            if settings.relay_drop_rate and rng.random() < settings.relay_drop_rate:
                faults.relay_parts_dropped += 1
                out = [mark("seq_gaps")]
            elif settings.relay_duplicate_rate and rng.random() < settings.relay_duplicate_rate:
                faults.relay_parts_duplicated += 1
                out = [item, item, mark("seq_duplicates")]  # the client drops the copy
        self._send(out)

    def _send(self, out: list[Event]) -> None:
        """To this mirror's streams, remembering the episode under way for late ones, and
        what its text added up to: a step committed with other text gets a mark."""
        sent: list[Event] = []
        for event in out:
            kind = event["type"]
            if kind == "message":
                if event["message"].get("role") == "assistant" and self._text_differs(event):
                    sent.append(mark("content_mismatches"))
                self._new_step()
            elif kind == "preview_reset" or kind == "history_reset":
                self._new_step()
            elif kind == "message_part":
                self.episode.append(event)
                self._add_text(event["message_part"])
            elif kind.startswith(MARK):
                self.episode.append(event)
            elif kind == "status":
                self.status = event["status"]["status"]
            sent.append(event)
        self.hub.publish(self.chat_id, sent)

    def _new_step(self) -> None:
        self.episode, self.text, self.seqs = [], [], set()

    def _add_text(self, part: Event) -> None:
        """A delta as a client adds it up: era D drops a seq it already has."""
        seq = part.get("seq")
        if seq is not None:
            if seq in self.seqs:
                return
            self.seqs.add(seq)
        text = (part.get("part") or {}).get("text")
        if isinstance(text, str):
            self.text.append(text)

    def _text_differs(self, message: Event) -> bool:
        committed = "".join(
            p["text"]
            for p in message["message"].get("content") or ()
            if isinstance(p.get("text"), str)
        )
        return "".join(self.text) != committed

    def _emit_durable(self, force: bool) -> bool:
        """The head of the durable queue, if it may go now; whether one went."""
        if not self.durable:
            return False
        kind, message_id, events = self.durable[0]
        if kind == "message" and message_id > self.committed and not force:
            now = time.monotonic()
            if self.waiting_since is None:
                self.waiting_since = now
            if now - self.waiting_since < COMMIT_WAIT_S:
                return False
        self.waiting_since = None
        self.durable.popleft()
        if kind in ("message", "refresh"):
            self.emitted = max(self.emitted, message_id)
        self._send(events)
        return True

    def _more_of_episode(self, part: Event) -> bool:
        """Whether another part of the same episode follows this one in the relay (a fault
        never takes a step's last part, so a client can see each)."""
        if not self.relayed:
            return False
        after = self.relayed[0]
        if after["type"] != "message_part":
            return False
        a, b = part["message_part"], after["message_part"]
        return bool(
            a.get("history_version") == b.get("history_version")
            and a.get("generation_attempt") == b.get("generation_attempt")
        )

    async def close(self, keep_streams: bool = False) -> None:
        replica = self.replica
        if replica.mirrors.get(self.chat_id) is self:
            del replica.mirrors[self.chat_id]
        if self.relay_task is not None:
            self.relay_task.cancel()
        if self._pump_task is not None and self._pump_task is not asyncio.current_task():
            self._pump_task.cancel()
        if self._listening and replica.pubsub is not None:
            self._listening = False
            with contextlib.suppress(Exception):
                await replica.pubsub.unsubscribe(stream_channel(self.chat_id), self._notified)


#: The relay's first item: the worker's newest message id, before its buffered parts.
HELLO: Final = "relay:hello"
#: What a relay request says of itself (Coder's header, protocol §5.1).
RELAY_SOURCE_HEADER: Final = "X-Coder-Relay-Source-Replica"
#: The stream's auth headers a relay forwards (Coder forwards these three).
CREDENTIAL_HEADERS: Final = ("coder-session-token", "authorization", "cookie")


def _is_text(event: Event) -> bool:
    part = event["message_part"].get("part") or {}
    return part.get("type") == "text"


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


async def serve_relay(replica: Replica, chat_id: str, websocket: Any) -> None:
    """``/chats/{chat}/stream/parts``: a chat we run, as another replica's streams need it.
    First a control message: the episode under way (``history_version``,
    ``generation_attempt``, as Coder's relay control message), our newest message id and
    the parts buffered for the episode; then every part, mark and commit mark in our order."""
    from starlette.websockets import WebSocketDisconnect

    chat = replica.sim.store.chats.get(chat_id)
    await websocket.accept()
    if chat is None:
        await websocket.close(4404, "not running here")
        return
    queue: asyncio.Queue[list[Event]] = asyncio.Queue()
    replica.relays.setdefault(chat_id, []).append(queue)
    newest = chat.messages[-1].id if chat.messages else 0
    buffered = list(chat.parts) if chat.active and not chat.buffer_done else []
    gone = asyncio.create_task(websocket.receive())
    try:
        hello = {
            "type": HELLO,
            "history_version": chat.episode.history,
            "generation_attempt": chat.episode.attempt,
            "last_message_id": newest,
            "parts": buffered,
        }
        await websocket.send_text(orjson.dumps([hello]).decode())
        while True:
            getting = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getting, gone}, return_when=asyncio.FIRST_COMPLETED)
            if gone in done:
                getting.cancel()
                return
            items = getting.result()
            while not queue.empty():
                items = items + queue.get_nowait()
            await websocket.send_text(orjson.dumps(items).decode())
    except (WebSocketDisconnect, OSError, RuntimeError):
        return
    finally:
        gone.cancel()
        queues = replica.relays.get(chat_id)
        if queues is not None and queue in queues:
            queues.remove(queue)
            if not queues:
                del replica.relays[chat_id]
