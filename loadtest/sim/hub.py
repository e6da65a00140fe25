"""Fan-out of a chat's events to its streams, and the counts of what was really sent.

Each event is encoded once, whatever the number of subscribers; each subscriber has its own
queue that its stream's writer drains into frames (``stream.write_loop``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, Final

import orjson

from loadtest.protocol.constants import BATCH_SIZE
from loadtest.protocol.events import MESSAGE_PART, QUEUE_UPDATE, RETRY
from loadtest.sim.events import FRAME_BREAK, MARK, Event

#: A subscriber whose backlog passes HIGH items makes the generator wait until it is below
#: LOW.
HIGH_WATER: Final = 2048
LOW_WATER: Final = 512

#: (event type, encoded events joined by commas, how many), or for an injected fault or an
#: integrity ``mark`` (its type, None, 0). A burst of same-type events is one item of up to
#: BATCH_SIZE.
Item = tuple[str, bytes | None, int]

#: The integrity breaks a stream counts as it passes their marks.
INTEGRITY: Final = ("seq_gaps", "seq_duplicates", "seq_out_of_order", "content_mismatches")

_dumps = orjson.dumps


class ChatCounts:
    """What was sent for one chat. ``turns_*`` and ``llm_retries`` count generation; the
    rest count deliveries (each subscriber's copy)."""

    __slots__ = (
        "actions_cancelled",
        "actions_required",
        "by_type",
        "bytes",
        "content_mismatches",
        "events",
        "faults",
        "frames",
        "live_by_type",
        "llm_retries",
        "parts_discarded",
        "pings",
        "preview_resets",
        "seq_duplicates",
        "seq_gaps",
        "seq_out_of_order",
        "streams_opened",
        "subagents_spawned",
        "tool_calls",
        "tool_errors",
        "tool_results",
        "turns_completed",
        "turns_failed",
        "turns_interrupted",
        "turns_started",
    )

    def __init__(self) -> None:
        self.frames = 0
        self.events = 0
        self.bytes = 0
        self.pings = 0
        self.turns_started = 0
        self.turns_completed = 0
        self.turns_failed = 0
        self.turns_interrupted = 0
        self.streams_opened = 0
        self.llm_retries = 0
        #: Turns that stopped in requires_action, the tool results posted to answer, and
        #: the waits chatd ended past their deadline with cancellation results.
        self.actions_required = 0
        self.tool_results = 0
        self.actions_cancelled = 0
        #: Section 10: tools the server ran, by name; those whose result was an error (a
        #: chat without a workspace); sub-agent chats spawned.
        self.tool_calls: dict[str, int] = {}
        self.tool_errors = 0
        self.subagents_spawned = 0
        #: Live parts each stream received of episodes a live preview_reset then threw away.
        self.parts_discarded = 0
        #: Live preview_reset events written (not the one in each connect snapshot).
        self.preview_resets = 0
        #: Integrity breaks delivered (a client of that stream can see each one).
        self.seq_gaps = 0
        self.seq_duplicates = 0
        self.seq_out_of_order = 0
        self.content_mismatches = 0
        #: Transport faults played, by name (``faults.SIM_FAULTS``, scopes turn and stream):
        #: each stream a turn fault hit, each stream connection failed on purpose.
        self.faults: dict[str, int] = {}
        self.by_type: dict[str, int] = {}
        #: Deliveries by type outside connect snapshots (a snapshot's replayed retry or error
        #: is not a new one: clients count what happens live).
        self.live_by_type: dict[str, int] = {}

    def add(self, other: ChatCounts) -> None:
        for name in self.__slots__:
            if name not in ("by_type", "faults", "live_by_type", "tool_calls"):
                setattr(self, name, getattr(self, name) + getattr(other, name))
        for mine, theirs in (
            (self.by_type, other.by_type),
            (self.live_by_type, other.live_by_type),
            (self.tool_calls, other.tool_calls),
            (self.faults, other.faults),
        ):
            for kind, count in theirs.items():
                mine[kind] = mine.get(kind, 0) + count

    def wire(self) -> dict[str, Any]:
        by_type = self.by_type
        return {
            "frames": self.frames,
            "events": self.events,
            "bytes": self.bytes,
            "pings": self.pings,
            "turns_started": self.turns_started,
            "turns_completed": self.turns_completed,
            "turns_failed": self.turns_failed,
            "turns_interrupted": self.turns_interrupted,
            "retry_events": self.live_by_type.get(RETRY, 0),
            "error_events": self.live_by_type.get("error", 0),
            "queue_updates": by_type.get(QUEUE_UPDATE, 0),
            "streams_opened": self.streams_opened,
            "llm_retries": self.llm_retries,
            "actions_required": self.actions_required,
            "tool_results": self.tool_results,
            "actions_cancelled": self.actions_cancelled,
            "tool_calls": dict(self.tool_calls),
            "tool_errors": self.tool_errors,
            "subagents_spawned": self.subagents_spawned,
            "parts_discarded": self.parts_discarded,
            "preview_resets": self.preview_resets,
            "integrity": {name: getattr(self, name) for name in INTEGRITY},
            "faults": dict(self.faults),
            "events_by_type": dict(by_type),
        }


class Counters:
    def __init__(self) -> None:
        self.chats: dict[str, ChatCounts] = {}
        #: Message accepted -> first output published, per turn (ms): the part of every
        #: client-measured TTFT that the simulator itself spent, so tests can bound the
        #: client's figure by what was sent rather than by the machine's speed.
        self.first_output_ms: list[float] = []

    def of(self, chat_id: str) -> ChatCounts:
        counts = self.chats.get(chat_id)
        if counts is None:
            counts = self.chats[chat_id] = ChatCounts()
        return counts

    def reset(self) -> None:
        self.chats.clear()
        self.first_output_ms.clear()

    def wire(self) -> dict[str, Any]:
        totals = ChatCounts()
        for counts in self.chats.values():
            totals.add(counts)
        sent = self.first_output_ms
        first_output = {
            "count": len(sent),
            "min": min(sent, default=0.0),
            "max": max(sent, default=0.0),
        }
        return {
            "totals": {**totals.wire(), "first_output_ms": first_output},
            "chats": {chat_id: counts.wire() for chat_id, counts in self.chats.items()},
        }


class Subscriber:
    """One stream's queue: the publisher appends, the stream's writer drains."""

    __slots__ = (
        "chat_id",
        "close_code",
        "close_reason",
        "closed",
        "episode_parts",
        "flush",
        "on_close",
        "queue",
        "room",
        "snapshot_left",
        "step_known",
        "wake",
    )

    def __init__(self, chat_id: str) -> None:
        self.chat_id = chat_id
        self.queue: deque[Item] = deque()
        self.wake = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()
        self.closed = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.flush = False
        #: Items of the connect snapshot not yet written: they are not live events.
        self.snapshot_left = 0
        #: Live parts written since the last commit or preview_reset (era D episodes).
        self.episode_parts = 0
        #: Whether this stream's client sees the current step whole, so compares its text:
        #: not when its snapshot replayed only part of one (eras A-C).
        self.step_known = True
        #: Told once when the stream is gone (a stream loop then stops).
        self.on_close: Callable[[], object] | None = None

    def close(self, code: int, reason: str = "", *, flush: bool = False) -> None:
        """Ask the writer to close the socket with ``code``: at once, or after sending what
        is queued (``flush``)."""
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
            self.flush = flush
        self.wake.set()


class Hub:
    def __init__(self) -> None:
        self.subscribers: dict[str, list[Subscriber]] = {}
        #: Chats with a subscriber over HIGH_WATER (the generator must wait).
        self._congested: set[str] = set()

    def subscribe(self, chat_id: str, snapshot: list[Event], whole: bool = True) -> Subscriber:
        """A new subscriber that first gets ``snapshot``; call with no await in between the
        snapshot being taken and this, so no live event is lost or duplicated. ``whole``:
        its parts replay the step under way from its start (era D), so it is checked."""
        subscriber = Subscriber(chat_id)
        items = _items(snapshot)
        subscriber.queue.extend(items)
        subscriber.snapshot_left = sum(1 for item in items if item[1] is not None)
        subscriber.step_known = whole or not any(e["type"] == MESSAGE_PART for e in snapshot)
        subscriber.wake.set()
        self.subscribers.setdefault(chat_id, []).append(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        subscriber.closed = True
        subscriber.room.set()
        on_close, subscriber.on_close = subscriber.on_close, None
        if on_close is not None:
            on_close()
        subs = self.subscribers.get(subscriber.chat_id)
        if subs and subscriber in subs:
            subs.remove(subscriber)
            if not subs:
                del self.subscribers[subscriber.chat_id]

    def publish(self, chat_id: str, events: list[Event]) -> None:
        subs = self.subscribers.get(chat_id)
        if not subs:
            return
        self._deliver(chat_id, subs, _items(events))

    def publish_burst(self, chat_id: str, kind: str, events: list[Event]) -> None:
        """Publish events of one type that were made together, encoded in one call per
        BATCH_SIZE of them (the full-speed generator's hot path)."""
        subs = self.subscribers.get(chat_id)
        if not subs:
            return
        items: list[Item] = []
        run: list[Event] = []
        for event in events:
            if event["type"] == kind:
                run.append(event)
                if len(run) == BATCH_SIZE:
                    items.append((kind, _dumps(run)[1:-1], len(run)))
                    run = []
                continue
            if run:
                items.append((kind, _dumps(run)[1:-1], len(run)))
                run = []
            items.extend(_items([event]))
        if run:
            items.append((kind, _dumps(run)[1:-1], len(run)))
        self._deliver(chat_id, subs, items)

    def _deliver(self, chat_id: str, subs: list[Subscriber], items: list[Item]) -> None:
        for subscriber in subs:
            subscriber.queue.extend(items)
            subscriber.wake.set()
            if len(subscriber.queue) > HIGH_WATER:
                self._congested.add(chat_id)

    def publish_one(self, chat_id: str, event: Event) -> None:
        """``publish`` of a single event (the per-delta path)."""
        subs = self.subscribers.get(chat_id)
        if not subs:
            return
        item = (event["type"], _dumps(event), 1)
        for subscriber in subs:
            subscriber.queue.append(item)
            subscriber.wake.set()
            if len(subscriber.queue) > HIGH_WATER:
                self._congested.add(chat_id)

    def send(self, subscriber: Subscriber, events: list[Event]) -> None:
        """``publish`` to one subscriber only (a stream loop of another replica's chat)."""
        if not subscriber.closed:
            self._deliver(subscriber.chat_id, [subscriber], _items(events))

    def inject(self, chat_id: str, fault: str) -> None:
        """Queue a transport fault behind what each stream of the chat already has."""
        for subscriber in self.subscribers.get(chat_id, ()):
            subscriber.queue.append((fault, None, 0))
            subscriber.wake.set()

    def congested(self, chat_id: str) -> bool:
        return chat_id in self._congested

    async def drain(self, chat_id: str) -> None:
        """Wait until every subscriber of the chat is back under LOW_WATER (backpressure
        instead of Coder's dropping, so counts stay exact under a full-speed generator)."""
        self._congested.discard(chat_id)
        for subscriber in list(self.subscribers.get(chat_id, ())):
            while len(subscriber.queue) > LOW_WATER and not subscriber.closed:
                subscriber.room.clear()
                await subscriber.room.wait()

    def close_all(self, code: int) -> list[Subscriber]:
        everyone = [s for subs in self.subscribers.values() for s in subs]
        for subscriber in everyone:
            subscriber.close(code)
        return everyone


def _items(events: list[Event]) -> list[Item]:
    """One item per event; a ``mark`` or a frame break becomes a note with no data."""
    return [
        (kind, None, 0)
        if (kind := event["type"]).startswith(MARK) or kind == FRAME_BREAK
        else (kind, _dumps(event), 1)
        for event in events
    ]
