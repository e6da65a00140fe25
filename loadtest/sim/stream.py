"""``GET /chats/{chat}/stream``: snapshot, then live events, batched as Coder batches them.

The writer blocks for one event, then drains whatever else is queued (at most 256) into
one frame: no timer, so a burst of deltas leaves in few frames and a trickle in many. The
socket is one-way: a data frame from the client closes it. Raw ASGI ``send`` keeps the hot
path free of Starlette's per-message state checks.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from uvicorn.protocols.utils import ClientDisconnected

from loadtest.protocol.constants import BAD_AFTER_ID, BATCH_SIZE
from loadtest.protocol.eras import Era
from loadtest.protocol.events import MESSAGE, MESSAGE_PART, PREVIEW_RESET, RETRY
from loadtest.sim.cluster.relay import relay_token
from loadtest.sim.errors import ApiError, not_found
from loadtest.sim.events import FRAME_BREAK, MARK
from loadtest.sim.faults import STREAM_ERROR
from loadtest.sim.hub import LOW_WATER, ChatCounts, Subscriber
from loadtest.sim.web import error_response, parse_uuid

if TYPE_CHECKING:
    from loadtest.sim.state import Sim

#: Live events after which a client sees the next step from its start (the tracker's
#: ``_new_step``).
STEP_BOUNDARIES = frozenset({MESSAGE, PREVIEW_RESET, RETRY})
ONE_WAY_REASON = "Clients cannot send messages for one-way WebSockets"
UNEXPECTED_DATA = "unexpected data message"


class Writer:
    """Drains one subscriber into frames on one socket, and plays injected faults."""

    def __init__(self, sim: Sim, subscriber: Subscriber, send: Send) -> None:
        self.sim = sim
        self.sub = subscriber
        self.send = send

    async def run(self) -> None:
        sub, send, sim = self.sub, self.send, self.sim
        queue, wake, room = sub.queue, sub.wake, sub.room
        prefix, suffix = sim.store.events.frame_prefix, sim.store.events.frame_suffix
        counters, chat_id = sim.counters, sub.chat_id
        while not sub.closed:
            if sub.close_code is not None and not (sub.flush and queue):
                await send(
                    {"type": "websocket.close", "code": sub.close_code, "reason": sub.close_reason}
                )
                return
            if not queue:
                if sub.close_code is None:
                    wake.clear()
                    await wake.wait()
                continue
            kinds: list[tuple[str, int]] = []
            chunks: list[bytes] = []
            count = 0
            snapshot = sub.snapshot_left
            while queue:
                kind, data, n = queue[0]
                if data is None and kind.startswith(MARK):
                    queue.popleft()
                    kinds.append((kind, 0))  # counted in order with the events around it
                    continue
                if data is None or count + n > BATCH_SIZE:
                    break
                if snapshot and len(chunks) == snapshot:
                    break  # the connect snapshot goes in frames of its own, as Coder's does
                queue.popleft()
                kinds.append((kind, n))
                chunks.append(data)
                count += n
            if chunks:
                payload = prefix + b",".join(chunks) + suffix
                await send({"type": "websocket.send", "text": payload.decode()})
                counts = counters.of(chat_id)
                counts.frames += 1
                counts.events += count
                counts.bytes += len(payload)
                by_type, live = counts.by_type, counts.live_by_type
                for kind, n in kinds:
                    if not n:
                        _count_mark(counts, sub, kind)
                        continue
                    by_type[kind] = by_type.get(kind, 0) + n
                    if sub.snapshot_left:
                        sub.snapshot_left -= 1  # snapshot items are one event each
                        continue
                    live[kind] = live.get(kind, 0) + n
                    if kind == MESSAGE_PART:
                        sub.episode_parts += n
                        continue
                    if kind in STEP_BOUNDARIES:
                        sub.step_known = True
                    if kind == MESSAGE:
                        sub.episode_parts = 0
                    elif kind == PREVIEW_RESET:
                        counts.preview_resets += 1
                        counts.parts_discarded += sub.episode_parts
                        sub.episode_parts = 0
            elif kinds:
                for kind, _ in kinds:
                    _count_mark(counters.of(chat_id), sub, kind)
            else:
                name = queue.popleft()[0]
                if name != FRAME_BREAK:
                    await self.fault(name)
            if len(queue) <= LOW_WATER:
                room.set()

    async def fault(self, name: str) -> None:
        faults = self.sim.config.faults
        _count_fault(self.sim.counters.of(self.sub.chat_id), name)
        if name == "drop":
            # uvicorn closes the transport without a close frame: the client sees 1006.
            raise ClientDisconnected("chatload sim: injected drop")
        if name == "stall":
            await asyncio.sleep(faults.stall_ms / 1000)
        elif name == "malformed":
            payload = self.sim.store.events.frame_prefix + b'{"type":"message_part","chat_id":'
            await self.send({"type": "websocket.send", "text": payload.decode()})
            counts = self.sim.counters.of(self.sub.chat_id)
            counts.frames += 1
            counts.bytes += len(payload)
        elif name == "close":
            self.sub.close(faults.close_code, "chatload sim: injected close")


def _count_fault(counts: ChatCounts, name: str) -> None:
    """A fault played on this stream (``faults.SimFault.counter``: ``faults.NAME``)."""
    counts.faults[name] = counts.faults.get(name, 0) + 1


def _count_mark(counts: ChatCounts, sub: Subscriber, kind: str) -> None:
    """An integrity break this stream delivered; a text mismatch only counts where the
    client compares the step's text (it saw the step whole)."""
    name = kind.removeprefix(MARK)
    if name != "content_mismatches" or sub.step_known:
        setattr(counts, name, getattr(counts, name) + 1)


async def _read(sim: Sim, subscriber: Subscriber, receive: Receive) -> None:
    """Wait for the client to go; a data frame from it breaks the one-way contract (section
    8.4: era A's one-way socket closes 1002, later eras' stream session 1008)."""
    code, reason = (1002, ONE_WAY_REASON) if sim.era is Era.A else (1008, UNEXPECTED_DATA)
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            subscriber.closed = True
            subscriber.wake.set()
            return
        subscriber.close(code, reason)


async def serve(sim: Sim, subscriber: Subscriber, receive: Receive, send: Send) -> None:
    """Run an accepted socket until either side closes it."""
    tasks = [asyncio.create_task(_read(sim, subscriber, receive))]
    try:
        await Writer(sim, subscriber, send).run()
    finally:
        sim.hub.unsubscribe(subscriber)
        for task in tasks:
            task.cancel()


class StreamEndpoint:
    """The chat stream, as an ASGI app so the hot path can use ``send`` directly."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sim = self.sim
        websocket = WebSocket(scope, receive, send)
        try:
            user = sim.chat_user(
                websocket.headers, websocket.cookies, websocket.query_params, websocket.url.path
            )
            chat_id = parse_uuid(websocket.path_params["chat"])
            remote = sim.replica is not None and chat_id not in sim.store.chats
            if remote:
                assert sim.replica is not None
                found = await sim.replica.remote_chat(chat_id)
                if found is None or found[0] != user.id:
                    raise not_found()
            else:
                chat_id = sim.store.get(user, chat_id).id
            raw_after = websocket.query_params.get("after_id")
            try:
                after_id = int(raw_after) if raw_after is not None else None
            except ValueError:
                # Go's strconv error, as Coder passes it on.
                detail = f'strconv.ParseInt: parsing "{raw_after}": invalid syntax'
                raise ApiError(400, BAD_AFTER_ID, detail) from None
            rate = sim.config.faults.rate(STREAM_ERROR)
            broken = bool(rate) and sim.rng.random() < rate
            if broken:
                _count_fault(sim.counters.of(chat_id), STREAM_ERROR.name)
            if broken and sim.era is not Era.A:
                # Era b+ subscribes before the upgrade, so its failures are plain HTTP.
                raise ApiError(
                    500, "Internal error streaming chat.", "chatload sim: injected fault"
                )
        except ApiError as error:
            await websocket.send_denial_response(error_response(error))
            return
        if broken:
            await websocket.accept()
            frame = sim.store.events.error_frame(
                "Internal error streaming chat.", "chatload sim: injected fault"
            )
            with contextlib.suppress(ClientDisconnected):
                await send({"type": "websocket.send", "text": frame.decode()})
                await send({"type": "websocket.close", "code": 1011, "reason": ""})
            return
        if remote:
            # Another replica runs the chat: the database, pubsub and its relay (replica.py).
            assert sim.replica is not None
            token = relay_token(websocket.headers, websocket.cookies)
            subscriber = await sim.replica.stream(chat_id, after_id, token)
        else:
            chat = sim.store.chats[chat_id]
            subscriber = sim.hub.subscribe(
                chat_id, sim.store.snapshot(chat, after_id), whole=sim.era is Era.D
            )
        try:
            await websocket.accept()
        except BaseException:
            sim.hub.unsubscribe(subscriber)
            raise
        sim.counters.of(chat_id).streams_opened += 1
        await serve(sim, subscriber, receive, send)
