"""A chat another replica runs, as this replica's streams see it: database, pubsub and relay, in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from typing import Any, Final, Protocol

import orjson

from loadtest.protocol.notify import ChatStreamNotifyMessage, stream_channel
from loadtest.pubsub.bus import Pubsub
from loadtest.sim.chats import ACTIVE
from loadtest.sim.cluster_config import Cluster, ReplicaCounts, ReplicaSettings
from loadtest.sim.events import MARK, Event, mark
from loadtest.sim.hub import Hub, Subscriber
from loadtest.sim.relay import COMMIT, HELLO, RELAY_SOURCE_HEADER

log = logging.getLogger("chatload.sim")

#: How long a stream on another replica waits for a message's relayed commit mark before it
#: emits the message anyway (the relay may be gone with its replica).
COMMIT_WAIT_S: Final = 1.0
#: How long a first stream waits for the relay's hello, and for the database to hold what
#: the hello says was committed.
HELLO_WAIT_S: Final = 2.0


class Host(Protocol):
    """What a mirror needs of its replica (``replica.Replica``)."""

    settings: ReplicaSettings
    tally: ReplicaCounts
    rng: random.Random
    pubsub: Pubsub | None
    sim: Cluster
    worker_id: str
    mirrors: dict[str, Mirror]

    async def query(self, sql: str, params: tuple[Any, ...] = ...) -> list[tuple[Any, ...]]: ...

    async def worker_url(self, worker_id: str) -> str | None: ...

    async def history(self, chat_id: str, after_id: int = ...) -> list[tuple[int, Event]]: ...


class Mirror:
    """A chat another replica runs, as streams on this replica see it: durable events from
    the database and pubsub, parts from the relay, merged in the worker's order."""

    def __init__(self, replica: Host, chat_id: str, credentials: dict[str, str]) -> None:
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
        messages = await replica.history(chat_id)
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
            snapshot.append(self._queue_update(queue))
        snapshot.append(events.status(chat_id, status))
        if status == "error" and last_error:
            text = last_error.get("message", "")
            snapshot.append(self._error(None if self.replica.settings.legacy else last_error, text))
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
                rows = await replica.history(chat_id)
                newest = max((row[0] for row in rows), default=0)
                reset = events.history_reset(chat_id)
                replica.tally.refreshes_mirrored += 1
                self.durable.append(("refresh", newest, [reset, *(row[1] for row in rows)]))
                self.last_id = max(self.last_id, newest)
            elif notify.after_message_id:
                for message_id, event in await replica.history(chat_id, self.last_id):
                    self.durable.append(("message", message_id, [event]))
                    self.last_id = message_id
            if notify.status:
                self.durable.append(("event", 0, [events.status(chat_id, notify.status)]))
                if notify.status in ACTIVE and notify.worker_id:
                    self._relay_to(notify.worker_id)
            if notify.retry is not None:
                retry = {"type": "retry", "chat_id": chat_id, "retry": notify.retry.wire()}
                self.durable.append(("event", 0, [retry]))
            structured = notify.error_payload if not legacy else None
            if structured is not None or notify.error:
                # A legacy replica reads only the text, and a legacy replica's notify has
                # only the text.
                error = self._error(
                    structured.wire() if structured is not None else None, notify.error
                )
                self.durable.append(("event", 0, [error]))
            if notify.queue_update:
                found = await replica.query("SELECT queue FROM sim_chats WHERE id = %s", (chat_id,))
                queue = found[0][0] if found else []
                self.durable.append(("event", 0, [self._queue_update(queue)]))

    def _error(self, structured: dict[str, Any] | None, text: str) -> Event:
        """An ``error`` event: the structured ChatError, or only the legacy text, which a
        client sees as a generic error (the seed's form, kind added)."""
        error = structured if structured is not None else {"message": text, "kind": "generic"}
        return {"type": "error", "chat_id": self.chat_id, "error": error}

    def _queue_update(self, queue: list[Any]) -> Event:
        """The whole queue as read back (an empty one omits the key, as Go's omitempty)."""
        event: Event = {"type": "queue_update", "chat_id": self.chat_id}
        if queue:
            event["queued_messages"] = queue
        return event

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
        settings, tally, rng = self.replica.settings, self.replica.tally, self.replica.rng
        out = [item]
        if item["type"] == "message_part" and _is_text(item) and self._more_of_episode(item):
            if settings.relay_drop_rate and rng.random() < settings.relay_drop_rate:
                tally.relay_parts_dropped += 1
                out = [mark("seq_gaps")]
            elif settings.relay_duplicate_rate and rng.random() < settings.relay_duplicate_rate:
                tally.relay_parts_duplicated += 1
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

    async def close(self) -> None:
        """Stop following the chat; its streams stay subscribed to this replica's hub."""
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


def _is_text(event: Event) -> bool:
    part = event["message_part"].get("part") or {}
    return part.get("type") == "text"
