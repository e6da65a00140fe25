"""Benchmark sockets (unauthenticated, under ``/__sim``).

- ``firehose?frames=N&batch=B[&chars=C]``: N pre-encoded frames of B text deltas each, as
  fast as the socket takes them, then close 1000. What client benchmarks read.
- ``turnhose?turns=N``: N back-to-back turns of a fresh chat through the real generator,
  state and hub with the live config (set ``ttft``/``part_gap`` to 0 for full speed), then
  close 1000. What the simulator's own capacity bench reads.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

import orjson
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from loadtest.protocol.events import MESSAGE_PART
from loadtest.protocol.models import ChatMessagePart
from loadtest.sim.accounts import OWNER_ID, User
from loadtest.sim.plan import CORPUS
from loadtest.sim.stream import serve

if TYPE_CHECKING:
    from loadtest.sim.state import Sim

#: The chat id the firehose's events carry (and its counts are kept under).
FIREHOSE_CHAT_ID: Final = "00000000-0000-4000-8000-00000000f14e"
#: Delta length that makes a firehose event about 300 bytes, like a real one of era d.
DEFAULT_CHARS: Final = 160


def _int(websocket: WebSocket, name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(websocket.query_params.get(name, default))
    except ValueError:
        value = default
    return max(low, min(high, value))


class FirehoseEndpoint:
    def __init__(self, sim: Sim) -> None:
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        frames = _int(websocket, "frames", 1000, 0, 100_000_000)
        batch = _int(websocket, "batch", 1, 1, 256)
        chars = _int(websocket, "chars", DEFAULT_CHARS, 1, 4096)
        events = self.sim.store.events
        encoded = [
            orjson.dumps(
                events.text_part(
                    FIREHOSE_CHAT_ID, "text", CORPUS[i * chars : (i + 1) * chars], None
                )
            )
            for i in range(batch)
        ]
        payload = events.frame(encoded)
        message = {"type": "websocket.send", "text": payload.decode()}
        await websocket.accept()
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "websocket.disconnect":
                pass
            gone.set()

        watcher = asyncio.create_task(watch())
        sent = 0
        try:
            for _ in range(frames):
                await send(message)
                sent += 1
                if not sent & 63:
                    # A send that fits the socket buffer never suspends: let the loop run,
                    # and stop once the reader has gone (a benchmark reader leaves early).
                    await asyncio.sleep(0)
                    if gone.is_set():
                        return
            await send({"type": "websocket.close", "code": 1000, "reason": ""})
        finally:
            watcher.cancel()
            counts = self.sim.counters.of(FIREHOSE_CHAT_ID)
            counts.frames += sent
            counts.events += sent * batch
            counts.bytes += sent * len(payload)
            counts.by_type[MESSAGE_PART] = counts.by_type.get(MESSAGE_PART, 0) + sent * batch


class TurnhoseEndpoint:
    def __init__(self, sim: Sim) -> None:
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sim = self.sim
        websocket = WebSocket(scope, receive, send)
        count = _int(websocket, "turns", 100, 1, 10_000_000)
        owner = sim.accounts.users.get(OWNER_ID) or User(
            OWNER_ID, "bench", "bench@chatload.sim", "", None, True, sim.clock()
        )
        model = sim.catalog.default_model()
        prompt = [ChatMessagePart(type="text", text="Reply with one short sentence.")]
        chat, _ = sim.store.create(owner, prompt, model.id if model else "")
        subscriber = sim.hub.subscribe(chat.id, sim.store.snapshot(chat, None))
        await websocket.accept()
        sim.counters.of(chat.id).streams_opened += 1

        async def turns() -> None:
            for index in range(count):
                if index:
                    _, events, _ = sim.store.post(chat, prompt, None)
                    sim.hub.publish(chat.id, events)
                sim.counters.of(chat.id).turns_started += 1
                await sim.player.run(chat)
                await asyncio.sleep(0)
            subscriber.close(1000, flush=True)

        producer = asyncio.create_task(turns())
        try:
            await serve(sim, subscriber, receive, send)
        finally:
            producer.cancel()
            sim.store.chats.pop(chat.id, None)
