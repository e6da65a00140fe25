"""A stream here of a chat another replica runs: Coder's stream loop, fed by the database, pubsub and relay.

As coderd/x/chatd/ARCHITECTURE.md describes it ("Stream loop", "Relay mechanism"; spec §9.4):
one loop per client stream, handling one operation at a time. ``Sync``, on each pubsub notify
(a hint only) and every ``POLL_S``, reads the chat's row and changed messages from the
database and emits, in order: messages, the queue, the status, the error, ``action_required``,
``retry``, then ``preview_reset`` when the history or a non-zero generation attempt changed; it
then points the relay at the chat's worker and episode. ``Part``, for each relayed part,
passes it on only if it is of the episode the last Sync saw and its ``seq`` is the last + 1.
Commit order comes from the database: a step's parts come before the message that ends it
because the worker relays them before it commits, and the loop reads that message only after
the commit's notify.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any, Final, Protocol

import orjson

from loadtest.protocol.constants import READ_LIMIT_BYTES, RELAY_PATH, RELAY_SOURCE_HEADER
from loadtest.protocol.constants import SESSION_TOKEN_HEADER as TOKEN_HEADER
from loadtest.protocol.events import (
    ACTION_REQUIRED,
    ERROR,
    HISTORY_RESET,
    MESSAGE,
    MESSAGE_PART,
    PREVIEW_RESET,
    QUEUE_UPDATE,
    RETRY,
)
from loadtest.protocol.notify import stream_channel
from loadtest.pubsub.bus import Pubsub
from loadtest.sim.cluster.config import Cluster, ReplicaCounts, ReplicaSettings
from loadtest.sim.events import Event, mark
from loadtest.sim.faults import RELAY_DROP, RELAY_DUPLICATE
from loadtest.sim.hub import Subscriber

log = logging.getLogger("chatload.sim")

#: How often a loop syncs without a notify (Coder's sync poller: every 10 s).
POLL_S: Final = 10.0
#: The relay's redial backoff while its worker does not answer (s).
REDIAL_S: Final = (0.1, 1.0)

_ROW = (
    "SELECT status, worker_id, snapshot_version, history_version, generation_attempt, "
    "queue_version, queue, last_error, retry_state, retry_state_version, pending_actions "
    "FROM sim_chats WHERE id = %s"
)


class Host(Protocol):
    """What a stream loop needs of its replica (``replica.Replica``)."""

    settings: ReplicaSettings
    tally: ReplicaCounts
    rng: random.Random
    pubsub: Pubsub | None
    sim: Cluster
    worker_id: str

    async def query(self, sql: str, params: tuple[Any, ...] = ...) -> list[tuple[Any, ...]]: ...

    async def worker_url(self, worker_id: str) -> str | None: ...

    def loop_closed(self, loop: StreamLoop) -> None: ...


class StreamLoop:
    """One stream of a chat another replica runs."""

    def __init__(self, replica: Host, chat_id: str, token: str, after_id: int | None) -> None:
        self.replica = replica
        self.chat_id = chat_id
        self.token = token
        self.after_id = after_id
        self.events = replica.sim.store.events
        self.subscriber: Subscriber | None = None
        # The loop's local state (ARCHITECTURE.md "Local stream state"), null at first.
        self.snapshot = 0
        self.history = 0
        self.queue_version = 0
        self.retry_version = 0
        self.status = ""
        self.worker = ""
        self.attempt = 0
        self.last_seq = 0
        self.error_history = 0
        self.action_history = 0
        #: Message id -> the revision this stream was sent.
        self.known: dict[int, int] = {}
        self.inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._listening = False
        # The relay: its worker, the episode wanted, and the control messages to write.
        self._relay_worker = ""
        self._relay_task: asyncio.Task[None] | None = None
        self._wanted: tuple[int, int] | None = None
        self._controls: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
        #: With relay faults on, the last accepted part waits for the next one: only a part
        #: another of its episode follows may be broken, so a client can see each break.
        self._held: Event | None = None
        #: The step's text as this stream was sent it (deduplicated by seq, as a client does).
        self._text: list[str] = []
        self._seqs: set[int] = set()

    # ------------------------------------------------------------ life

    async def open(self) -> Subscriber:
        """Listen, sync from nothing (the snapshot), then subscribe: the snapshot and the
        subscription are one step (no await between)."""
        replica = self.replica
        assert replica.pubsub is not None
        await replica.pubsub.subscribe(stream_channel(self.chat_id), self._notified)
        self._listening = True
        snapshot = await self._sync(bootstrap=True)
        store, hub = replica.sim.store, replica.sim.hub
        local = store.chats.get(self.chat_id)
        if local is not None:  # taken over by this replica meanwhile: an ordinary stream
            await self.close()
            return hub.subscribe(self.chat_id, store.snapshot(local, self.after_id), whole=True)
        self.subscriber = hub.subscribe(self.chat_id, snapshot, whole=True)
        self.subscriber.on_close = self._gone
        self._task = asyncio.create_task(self._run())
        return self.subscriber

    def _notified(self, _channel: str, _payload: bytes) -> None:
        self.inbox.put_nowait(("sync", None))

    def _gone(self) -> None:
        self.inbox.put_nowait(("stop", None))

    async def close(self) -> None:
        """Stop syncing and relaying; the subscriber stays with this replica's hub."""
        if self._relay_task is not None:
            self._relay_task.cancel()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        if self._listening and self.replica.pubsub is not None:
            self._listening = False
            with contextlib.suppress(Exception):
                await self.replica.pubsub.unsubscribe(stream_channel(self.chat_id), self._notified)
        self.replica.loop_closed(self)

    async def handover(self) -> None:
        """This replica took the chat over: one last sync, then its own events follow."""
        if self._task is not None:
            self._task.cancel()
        with contextlib.suppress(Exception):
            self._emit(await self._sync())
        self._flush_held()
        await self.close()

    async def _run(self) -> None:
        try:
            while True:
                try:
                    op, arg = await asyncio.wait_for(self.inbox.get(), POLL_S)
                except TimeoutError:
                    op, arg = "sync", None
                if op == "stop" or self.subscriber is None or self.subscriber.closed:
                    break
                try:
                    if op == "sync":
                        self._emit(await self._sync())
                    elif op == "part":
                        self._part(arg)
                    elif op == "relay_down":
                        self._flush_held()
                except Exception:
                    log.exception("stream loop of chat %s", self.chat_id)
        finally:
            if self._task is asyncio.current_task():
                self._task = None
                await self.close()

    # ------------------------------------------------------------ Sync

    async def _sync(self, bootstrap: bool = False) -> list[Event]:
        """Read the chat's state; the events that bring this stream up to it."""
        replica, events, chat_id = self.replica, self.events, self.chat_id
        rows = await replica.query(_ROW, (chat_id,))
        if not rows:
            return []
        (
            status,
            worker,
            snapshot,
            history,
            attempt,
            queue_version,
            queue,
            last_error,
            retry_state,
            retry_version,
            pending,
        ) = rows[0]
        if snapshot <= self.snapshot:
            return []
        out: list[Event] = []
        if history > self.history:
            out += await self._messages(history, bootstrap)
        if queue_version > self.queue_version:
            out.append(self._queue_update(queue or []))
        if status != self.status:
            out.append(events.status(chat_id, status))
        if status == "error" and history > self.error_history:
            self.error_history = history
            out.append(self._error(last_error or {}))
        if status == "requires_action" and history > self.action_history:
            self.action_history = history
            calls = {"tool_calls": pending or []}
            out.append({"type": ACTION_REQUIRED, "chat_id": chat_id, ACTION_REQUIRED: calls})
        if retry_version > self.retry_version and retry_state:
            out.append({"type": RETRY, "chat_id": chat_id, RETRY: retry_state})
        if history != self.history or (attempt != self.attempt and attempt != 0):
            self.last_seq = 0
            out.append(events.preview_reset(chat_id))
        self.snapshot, self.history, self.attempt = snapshot, history, attempt
        self.queue_version, self.retry_version = queue_version, retry_version
        self.status, self.worker = status, worker
        if worker:
            # Connected while the chat has a worker; an episode selected once its attempt
            # is recorded (ARCHITECTURE.md "Relay behavior").
            self._relay_to(worker, (history, attempt) if attempt > 0 else None)
        return out

    async def _messages(self, history: int, bootstrap: bool) -> list[Event]:
        """Messages whose revision is newer than this stream has; all of them again after a
        ``history_reset`` when one it had was deleted (an edit)."""
        replica, chat_id = self.replica, self.chat_id
        changed = await replica.query(
            "SELECT id, event, deleted, revision FROM sim_messages WHERE chat_id = %s "
            "AND revision > %s AND revision <= %s ORDER BY id",
            (chat_id, self.history, history),
        )
        out: list[Event] = []
        if not bootstrap and any(row[2] and row[0] in self.known for row in changed):
            current = await replica.query(
                "SELECT id, event, revision FROM sim_messages WHERE chat_id = %s "
                "AND NOT deleted AND revision <= %s ORDER BY id",
                (chat_id, history),
            )
            replica.tally.refreshes_mirrored += 1
            self.known = {row[0]: row[2] for row in current}
            return [self.events.history_reset(chat_id), *(row[1] for row in current)]
        for message_id, event, deleted, revision in changed:
            if deleted:
                self.known.pop(message_id, None)
                continue
            if self.known.get(message_id, 0) >= revision:
                continue
            self.known[message_id] = revision
            if bootstrap and self.after_id is not None and message_id <= self.after_id:
                continue
            out.append(event)
        return out

    def _error(self, stored: dict[str, Any]) -> Event:
        """The chat's ``last_error`` as an ``error`` event: a replica of the previous version
        (or an error one wrote) knows only its text, which a client reads as generic."""
        if self.replica.settings.legacy or "kind" not in stored:
            stored = {"message": stored.get("message", ""), "kind": "generic"}
        return {"type": ERROR, "chat_id": self.chat_id, ERROR: stored}

    def _queue_update(self, queue: list[Any]) -> Event:
        """The whole queue as read back (an empty one omits the key, as Go's omitempty)."""
        event: Event = {"type": QUEUE_UPDATE, "chat_id": self.chat_id}
        if queue:
            event["queued_messages"] = queue
        return event

    # ------------------------------------------------------------ Part

    def _part(self, part: Event) -> None:
        body = part.get(MESSAGE_PART) or {}
        episode = (body.get("history_version"), body.get("generation_attempt"))
        if episode != (self.history, self.attempt) or body.get("seq") != self.last_seq + 1:
            return  # of another episode, or out of sequence: rejected
        self.last_seq = body["seq"]
        if not self._faulty():
            self._send([part])
            return
        held, self._held = self._held, part
        if held is not None:
            self._send(self._broken(held))

    def _faulty(self) -> bool:
        faults = self.replica.settings.faults
        return bool(faults.rate(RELAY_DROP) or faults.rate(RELAY_DUPLICATE))

    def _broken(self, part: Event) -> list[Event]:
        """A text part with this replica's relay faults played (never a step's last part)."""
        faults, tally, rng = self.replica.settings.faults, self.replica.tally, self.replica.rng
        if (part[MESSAGE_PART].get("part") or {}).get("type") != "text":
            return [part]
        drop, duplicate = faults.rate(RELAY_DROP), faults.rate(RELAY_DUPLICATE)
        if drop and rng.random() < drop:
            tally.relay_parts_dropped += 1
            return [mark("seq_gaps")]
        if duplicate and rng.random() < duplicate:
            tally.relay_parts_duplicated += 1
            return [part, part, mark("seq_duplicates")]  # the client drops the copy
        return [part]

    def _flush_held(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            self._send([held])

    # ------------------------------------------------------------ to the client

    def _emit(self, events: list[Event]) -> None:
        if events:
            self._flush_held()  # the episode's last part, before what follows it
            self._send(events)

    def _send(self, events: list[Event]) -> None:
        """To this loop's stream, with a mark where the text it was sent for a step differs
        from the step's committed message (what its client will find)."""
        sent: list[Event] = []
        for event in events:
            kind = event["type"]
            if kind == MESSAGE:
                if event["message"].get("role") == "assistant" and self._text_differs(event):
                    sent.append(mark("content_mismatches"))
                self._text, self._seqs = [], set()
            elif kind in (PREVIEW_RESET, HISTORY_RESET):
                self._text, self._seqs = [], set()
            elif kind == MESSAGE_PART:
                self._add_text(event[MESSAGE_PART])
            sent.append(event)
        if self.subscriber is not None:
            self.replica.sim.hub.send(self.subscriber, sent)

    def _add_text(self, part: Event) -> None:
        seq = part.get("seq")
        if type(seq) is int:
            if seq in self._seqs:
                return
            self._seqs.add(seq)
        text = (part.get("part") or {}).get("text")
        if isinstance(text, str):
            self._text.append(text)

    def _text_differs(self, message: Event) -> bool:
        """Whether the step's text as sent differs from its commit: a preview cut short (the
        commit's Sync overtook the relay, and the loop rejects the episode's later parts)
        is a prefix of it, not a difference."""
        committed = "".join(
            p["text"]
            for p in message["message"].get("content") or ()
            if isinstance(p.get("text"), str)
        )
        return not committed.startswith("".join(self._text))

    # ------------------------------------------------------------ the relay

    def _relay_to(self, worker: str, episode: tuple[int, int] | None) -> None:
        """Point the relay at ``worker`` and, when given, its ``episode``: a new connection
        only for a new worker; a control message over the same one for a new episode."""
        task = self._relay_task
        if worker != self._relay_worker or task is None or task.done():
            if task is not None:
                task.cancel()
            self._relay_worker = worker
            self._wanted = episode
            self._controls = asyncio.Queue()
            self._relay_task = asyncio.create_task(self._relay(worker))
        elif episode is not None and episode != self._wanted:
            self._wanted = episode
            self._controls.put_nowait(episode)

    async def _relay(self, worker: str) -> None:
        """The worker's parts of the wanted episode, until it closes or the loop moves on;
        redialled while the worker is still the chat's."""
        delay = REDIAL_S[0]
        url = await self.replica.worker_url(worker)
        while url is not None:
            try:
                await self._relay_once(url)
                delay = REDIAL_S[0]
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the worker is gone or refused: a notify names the next
                log.info("relay of chat %s from %s: %s", self.chat_id, worker, exc)
            self.inbox.put_nowait(("relay_down", None))
            await asyncio.sleep(delay)
            delay = min(delay * 2, REDIAL_S[1])

    async def _relay_once(self, url: str) -> None:
        from websockets.asyncio.client import connect as ws_connect

        path = RELAY_PATH.format(chat=self.chat_id)
        target = url.replace("http://", "ws://", 1) + path
        # Only these two (enterprise relay dialer): the stream's token, and who is asking.
        headers = {TOKEN_HEADER: self.token, RELAY_SOURCE_HEADER: self.replica.worker_id}
        async with ws_connect(
            target,
            additional_headers=headers,
            open_timeout=5,
            compression=None,
            max_size=READ_LIMIT_BYTES,
        ) as ws:
            while not self._controls.empty():  # the latest episode covers them
                self._controls.get_nowait()
            wanted = self._wanted
            if wanted is not None:
                await ws.send(_control(wanted))

            async def write() -> None:
                while True:
                    await ws.send(_control(await self._controls.get()))

            writer = asyncio.create_task(write())
            try:
                async for frame in ws:
                    for item in orjson.loads(frame):
                        if item.get("type") == MESSAGE_PART:
                            self.inbox.put_nowait(("part", item))
            finally:
                writer.cancel()


def _control(episode: tuple[int, int]) -> str:
    history, attempt = episode
    return orjson.dumps({"history_version": history, "generation_attempt": attempt}).decode()
