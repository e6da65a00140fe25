"""A chat stream's writer and endpoint: the snapshot in frames of its own, live events
batched up to Coder's batch size, what each frame counts, faults played on the socket, a
data frame from the client closing the one-way socket, and refusals before the upgrade."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from starlette.testclient import WebSocketDenialResponse
from uvicorn.protocols.utils import ClientDisconnected

from loadtest.protocol.constants import BAD_AFTER_ID, BATCH_SIZE
from loadtest.protocol.eras import Era
from loadtest.sim.events import Event
from loadtest.sim.hub import Subscriber
from loadtest.sim.state import Sim
from loadtest.sim.stream import ONE_WAY_REASON, UNEXPECTED_DATA, Writer, serve
from tests.unit.sim.apps import client, create_body, sim_of

CHAT = "c1"


def part(n: int) -> Event:
    return {"type": "message_part", "chat_id": CHAT, "message_part": {"part": {"text": str(n)}}}


def event(kind: str) -> Event:
    return {"type": kind, "chat_id": CHAT}


class Socket:
    """What the writer sends: data frames (as parsed JSON lists) and the close."""

    def __init__(self) -> None:
        self.frames: list[list[dict[str, Any]]] = []
        self.closed: tuple[int, str] | None = None

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            self.frames.append(orjson.loads(message["text"]))
        else:
            self.closed = (message["code"], message["reason"])


def write(sim: Sim, sub: Subscriber) -> Socket:
    """Run the writer until the subscriber's close (queued first, flushed)."""
    socket = Socket()
    sub.close(1000, flush=True)
    asyncio.run(asyncio.wait_for(Writer(sim, sub, socket.send).run(), 10))
    return socket


def test_the_snapshot_goes_in_a_frame_of_its_own_then_live_events_in_one_batch() -> None:
    sim = sim_of(Era.D)
    sub = sim.hub.subscribe(CHAT, [event("status"), part(0)])
    sim.hub.publish(CHAT, [part(n) for n in range(1, 6)])
    socket = write(sim, sub)
    assert [len(frame) for frame in socket.frames] == [2, 5] and socket.closed == (1000, "")
    counts = sim.counters.of(CHAT)
    assert (counts.frames, counts.events) == (2, 7)
    assert counts.by_type == {"status": 1, "message_part": 6}
    assert counts.live_by_type == {"message_part": 5}  # the snapshot is not live
    assert counts.bytes > 0


def test_a_burst_longer_than_a_batch_is_cut_into_frames_of_at_most_a_batch() -> None:
    sim = sim_of(Era.D)
    sub = sim.hub.subscribe(CHAT, [])
    sim.hub.publish(CHAT, [part(n) for n in range(BATCH_SIZE + 10)])
    socket = write(sim, sub)
    assert [len(frame) for frame in socket.frames] == [BATCH_SIZE, 10]
    texts = [e["message_part"]["part"]["text"] for frame in socket.frames for e in frame]
    assert texts == [str(n) for n in range(BATCH_SIZE + 10)]  # in order, none lost


def test_a_preview_reset_counts_the_parts_a_client_throws_away() -> None:
    sim = sim_of(Era.D)
    sub = sim.hub.subscribe(CHAT, [])
    sim.hub.publish(CHAT, [part(1), part(2), part(3), event("preview_reset"), part(4)])
    sim.hub.publish(CHAT, [event("message")])
    write(sim, sub)
    counts = sim.counters.of(CHAT)
    assert (counts.preview_resets, counts.parts_discarded) == (1, 3)


def test_an_injected_close_closes_with_the_configured_code_after_what_was_queued() -> None:
    sim = sim_of(Era.D, faults={"close_code": 4001})
    sub = sim.hub.subscribe(CHAT, [])
    sim.hub.publish(CHAT, [part(1)])
    sim.hub.inject(CHAT, "close")
    socket = Socket()
    asyncio.run(asyncio.wait_for(Writer(sim, sub, socket.send).run(), 10))
    assert len(socket.frames) == 1 and socket.closed == (4001, "chatload sim: injected close")
    assert sim.counters.of(CHAT).faults == {"close": 1}


def test_an_injected_drop_ends_the_socket_without_a_close_frame() -> None:
    sim = sim_of(Era.D)
    sub = sim.hub.subscribe(CHAT, [])
    sim.hub.inject(CHAT, "drop")
    socket = Socket()
    with pytest.raises(ClientDisconnected):
        asyncio.run(asyncio.wait_for(Writer(sim, sub, socket.send).run(), 10))
    assert socket.closed is None and sim.counters.of(CHAT).faults == {"drop": 1}


@pytest.mark.parametrize(
    ("era", "code", "reason"), [(Era.A, 1002, ONE_WAY_REASON), (Era.D, 1008, UNEXPECTED_DATA)]
)
def test_a_data_frame_from_the_client_closes_the_one_way_socket(
    era: Era, code: int, reason: str
) -> None:
    async def scenario() -> Socket:
        sim = sim_of(era)
        sub = sim.hub.subscribe(CHAT, [])
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        inbox.put_nowait({"type": "websocket.receive", "text": "hello?"})
        socket = Socket()
        await asyncio.wait_for(serve(sim, sub, inbox.get, socket.send), 10)
        assert CHAT not in sim.hub.subscribers  # unsubscribed once the socket is done
        return socket

    assert asyncio.run(scenario()).closed == (code, reason)


def test_a_bad_after_id_is_refused_before_the_upgrade() -> None:
    sim = sim_of(Era.D, requires_action_ratio=1.0)
    with client(sim) as http:
        base = sim.paths.base
        chat_id = http.post(base, json=create_body()).json()["id"]
        with (
            pytest.raises(WebSocketDenialResponse) as refused,
            http.websocket_connect(f"{base}/{chat_id}/stream?after_id=x"),
        ):
            pass
        assert refused.value.status_code == 400
        assert refused.value.json()["message"] == BAD_AFTER_ID
        assert sim.counters.of(chat_id).streams_opened == 0


@pytest.mark.parametrize("era", [Era.A, Era.D])
def test_an_injected_stream_error_is_an_http_500_or_an_error_frame_then_1011(era: Era) -> None:
    sim = sim_of(era, requires_action_ratio=1.0, faults={"stream_error_rate": 1.0})
    with client(sim) as http:
        base = sim.paths.base
        chat_id = http.post(base, json=create_body()).json()["id"]
        if era is Era.A:
            with http.websocket_connect(f"{base}/{chat_id}/stream") as ws:
                frame = ws.receive_json()
                closed = ws.receive()
            assert "Internal error streaming chat." in orjson.dumps(frame).decode()
            assert closed["code"] == 1011
        else:
            with (
                pytest.raises(WebSocketDenialResponse) as refused,
                http.websocket_connect(f"{base}/{chat_id}/stream"),
            ):
                pass
            assert refused.value.status_code == 500
        assert sim.counters.of(chat_id).faults == {"stream_error": 1}
