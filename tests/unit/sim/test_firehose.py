"""The benchmark sockets in-process: the firehose's frames of B deltas then close 1000 (its
parameters clamped), and the turnhose's N real turns on one stream."""

from __future__ import annotations

import orjson
from starlette.testclient import TestClient

from loadtest.protocol.eras import Era
from loadtest.sim.firehose import FIREHOSE_CHAT_ID
from tests.unit.sim.apps import client, sim_of


def read_all(http: TestClient, path: str) -> tuple[list[list[dict[str, object]]], int]:
    """Every data frame until the close, and the close code (bounded)."""
    frames = []
    with http.websocket_connect(path) as ws:
        for _ in range(100_000):
            message = ws.receive()
            if message["type"] == "websocket.close":
                return frames, message["code"]
            frames.append(orjson.loads(message["text"]))
    raise AssertionError("the socket never closed")


def test_the_firehose_sends_n_frames_of_b_deltas_then_closes_normally() -> None:
    sim = sim_of(Era.D)
    with client(sim) as http:
        frames, code = read_all(http, "/__sim/firehose?frames=3&batch=4&chars=10")
    assert code == 1000 and [len(frame) for frame in frames] == [4, 4, 4]
    first = frames[0][0]
    assert isinstance(first, dict) and first["chat_id"] == FIREHOSE_CHAT_ID
    part = first["message_part"]
    assert isinstance(part, dict) and len(part["part"]["text"]) == 10
    counts = sim.counters.of(FIREHOSE_CHAT_ID)
    assert (counts.frames, counts.events, counts.by_type) == (3, 12, {"message_part": 12})


def test_firehose_parameters_out_of_range_or_unreadable_are_clamped_or_defaulted() -> None:
    sim = sim_of(Era.D)
    with client(sim) as http:
        frames, code = read_all(http, "/__sim/firehose?frames=2&batch=9999&chars=x")
    assert code == 1000 and [len(frame) for frame in frames] == [256, 256]
    part = frames[0][0]["message_part"]
    assert isinstance(part, dict) and len(part["part"]["text"]) == 160  # the default


def test_the_turnhose_plays_n_turns_of_one_chat_on_one_stream_then_forgets_it() -> None:
    sim = sim_of(Era.D)
    with client(sim) as http:
        frames, code = read_all(http, "/__sim/turnhose?turns=3")
    assert code == 1000
    events = [event for frame in frames for event in frame]
    chat_id = events[0]["chat_id"]
    assert isinstance(chat_id, str)
    counts = sim.counters.of(chat_id)
    assert (counts.turns_started, counts.turns_completed, counts.streams_opened) == (3, 3, 1)
    statuses = [e["status"]["status"] for e in events if e["type"] == "status"]  # type: ignore[index]
    assert statuses.count("waiting") == 3
    assert chat_id not in sim.store.chats
