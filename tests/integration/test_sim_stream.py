"""The chat stream of ``chatload sim``: snapshot and live order, batching, fan-out, counts."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from loadtest.core.decode import decode_frame
from loadtest.protocol.eras import Era, era_from_frame
from tests.integration.conftest import EraSim, text


def _compact(types: list[str]) -> list[str]:
    """Event types with runs of ``message_part`` collapsed to one."""
    out: list[str] = []
    for kind in types:
        if not (kind == "message_part" and out and out[-1] == "message_part"):
            out.append(kind)
    return out


def _idle_chat(sim: EraSim) -> dict[str, Any]:
    chat = sim.create_chat()
    sim.wait_idle(chat["id"])
    return chat


def test_snapshot_then_live_turn(any_era: EraSim) -> None:
    sim = any_era
    chat = _idle_chat(sim)
    with sim.open(chat["id"]) as stream:
        stream.until(lambda e: e["type"] == "message" and e["message"]["role"] == "assistant")
        stream.until(lambda e: e["type"] == "status")
        snapshot = stream.types()
        if sim.era == "d":
            # Section 8.5's order: messages, status, preview_reset; a committed step's parts
            # are history (the relay sends only the episode under way).
            assert _compact(snapshot) == ["message", "message", "status", "preview_reset"]
        else:
            # The finished run's deltas stay in the snapshot for 5 s (bufferRetainGracePeriod).
            assert _compact(snapshot) == ["status", "message_part", "message", "message"]
        assert stream.statuses() == ["waiting"]
        assert sim.post(chat["id"], "go").json()["queued"] is False
        stream.until_status("waiting", count=2)
        live = stream.events[len(snapshot) :]
        if sim.era == "d":
            # Every commit ends with preview_reset: the user's message, then the answer's;
            # and each generation attempt's start has its own (spec §9.2).
            assert _compact([e["type"] for e in live]) == [
                "message",
                "status",
                "preview_reset",
                "preview_reset",
                "message_part",
                "message",
                "preview_reset",
                "status",
            ]
            live = [e for e in live if e["type"] != "preview_reset"]
        else:
            assert _compact([e["type"] for e in live]) == [
                "message",
                "status",
                "status",
                "message_part",
                "message",
                "status",
            ]
        assert live[0]["message"]["role"] == "user"
        expected = ["pending", "running", "waiting"] if sim.era != "d" else ["running", "waiting"]
        assert stream.statuses()[1:] == expected
        assistant = live[-2]["message"]
        assert assistant["role"] == "assistant"
        assert assistant["usage"]["output_tokens"] > 0
        parts = [e for e in live if e["type"] == "message_part"]
        assert len(parts) == 6
        assert (
            "".join(p["message_part"]["part"]["text"] for p in parts)
            == (assistant["content"][0]["text"])
        )
        assert all(e["chat_id"] == chat["id"] for e in stream.events)
        assert not stream.errors


def test_frames_follow_the_era(any_era: EraSim) -> None:
    sim = any_era
    chat = _idle_chat(sim)
    with sim.open(chat["id"]) as stream:
        stream.until_status("waiting")
        frame = stream.frames[0]
    if sim.era == "a":
        assert frame.startswith('{"type":"data","data":[')
        assert era_from_frame(frame) is Era.A
    else:
        assert frame.startswith("[") and frame.endswith("]\n")
        assert era_from_frame(frame) is Era.B


def test_after_id(any_era: EraSim) -> None:
    sim = any_era
    chat = _idle_chat(sim)
    with sim.open(chat["id"]) as stream:
        stream.until_status("waiting")
        user_id = next(e["message"]["id"] for e in stream.events if e["type"] == "message")
    with sim.open(chat["id"], f"?after_id={user_id}") as stream:
        stream.until_status("waiting")
        roles = [e["message"]["role"] for e in stream.events if e["type"] == "message"]
        assert roles == ["assistant"]
    with pytest.raises(InvalidStatus) as refused:
        sim.open(chat["id"], "?after_id=x")
    assert refused.value.response.status_code == 400
    assert b"Invalid after_id parameter." in refused.value.response.body


def test_snapshot_has_buffered_parts_and_queue(any_era: EraSim) -> None:
    sim = any_era
    sim.patch(
        ttft_ms={"dist": "constant", "value": 0},
        part_gap_ms={"dist": "constant", "value": 150},
        parts_per_turn=8,
    )
    chat = sim.create_chat()
    with sim.open(chat["id"]) as first:
        first.until(lambda e: e["type"] == "message_part")
        assert sim.post(chat["id"], "later").json()["queued"] is True
        first.until(lambda e: e["type"] == "queue_update")
        queued = [e for e in first.events if e["type"] == "queue_update"][-1]
        assert [q["content"][0]["text"] for q in queued["queued_messages"]] == ["later"]
        with sim.open(chat["id"]) as second:
            second.until(lambda e: e["type"] == "queue_update")
            kinds = _compact(second.types())
            if sim.era == "d":
                assert kinds == [
                    "message",
                    "queue_update",
                    "status",
                    "preview_reset",
                    "message_part",
                ]
            else:
                assert kinds == ["status", "message_part", "message", "queue_update"]
            assert second.statuses() == ["running"]
    sim.restore()
    sim.api.post(f"{sim.base}/{chat['id']}/interrupt")


def test_queue_promotion_has_no_waiting_between(any_era: EraSim) -> None:
    sim = any_era
    sim.patch(ttft_ms={"dist": "constant", "value": 300})
    chat = sim.create_chat()
    with sim.open(chat["id"]) as stream:
        assert sim.post(chat["id"], "next").json()["queued"] is True
        stream.until_status("waiting")
        kinds = stream.types()
        promoted = next(
            i
            for i, e in enumerate(stream.events)
            if e["type"] == "message" and e["message"]["content"][0]["text"] == "next"
        )
        after = stream.events[promoted : promoted + 3]
        assert [e["type"] for e in after[:2]] == ["message", "queue_update"]
        assert "queued_messages" not in after[1]
        assert after[2]["status"]["status"] == ("running" if sim.era == "d" else "pending")
        assert stream.statuses().count("waiting") == 1
        assert kinds.count("queue_update") == 2


def test_burst_is_batched(any_era: EraSim) -> None:
    sim = any_era
    sim.patch(
        parts_per_turn=300,
        part_gap_ms={"dist": "constant", "value": 0},
        ttft_ms={"dist": "constant", "value": 0},
    )
    chat = _idle_chat(sim)
    sim.http.post("/__sim/reset")
    with sim.open(chat["id"]) as stream:
        stream.until_status("waiting")
        stream.settle()
        start, first = len(stream.frames), len(stream.events)
        sim.post(chat["id"])
        stream.until_status("waiting", count=2)
        frames = stream.frames[start:]
        parts = sum(1 for e in stream.events[first:] if e["type"] == "message_part")
    assert parts == 300
    assert len(frames) < parts / 50
    assert max(len(_events_of(frame)) for frame in frames) <= 256
    counts = sim.counts()["chats"][chat["id"]]
    assert counts["frames"] == len(stream.frames)
    assert counts["events"] == len(stream.events)


def _events_of(frame: str) -> list[dict[str, Any]]:
    decoded = decode_frame(frame)
    assert isinstance(decoded, list)
    return decoded


def test_every_stream_gets_every_event_and_counts_match(any_era: EraSim) -> None:
    sim = any_era
    chat = _idle_chat(sim)
    sim.http.post("/__sim/reset")
    streams = [sim.open(chat["id"]) for _ in range(3)]
    try:
        for stream in streams:
            stream.until_status("waiting")
        sim.post(chat["id"])
        for stream in streams:
            stream.until_status("waiting", count=2)
        sequences = [[(e["type"], e.get("status")) for e in s.events] for s in streams]
        assert sequences[0] == sequences[1] == sequences[2]
        counts = sim.counts()["chats"][chat["id"]]
        frames = [f for s in streams for f in s.frames]
        assert counts["frames"] == len(frames)
        assert counts["bytes"] == sum(len(f.encode()) for f in frames)
        assert counts["events"] == sum(len(s.events) for s in streams)
        assert counts["streams_opened"] == 3
        assert counts["turns_started"] == counts["turns_completed"] == 1
        by_type: dict[str, int] = {}
        for stream in streams:
            for kind in stream.types():
                by_type[kind] = by_type.get(kind, 0) + 1
        assert counts["events_by_type"] == by_type
        totals = sim.counts()["totals"]
        assert totals["frames"] >= counts["frames"]
    finally:
        for stream in streams:
            stream.close()


def test_one_way_socket(any_era: EraSim) -> None:
    sim = any_era
    chat = _idle_chat(sim)
    stream = sim.open(chat["id"])
    stream.until_status("waiting")
    stream.socket.send("hello server")
    with pytest.raises(ConnectionClosed) as closed:
        for _ in range(100):
            stream.socket.recv(timeout=5)
    received = closed.value.rcvd
    assert received is not None
    if sim.era == "a":
        assert (received.code, received.reason) == (
            1002,
            "Clients cannot send messages for one-way WebSockets",
        )
    else:
        assert (received.code, received.reason) == (1008, "unexpected data message")


def test_no_json_pings_on_the_stream_in_any_era(any_era: EraSim) -> None:
    """Section 8.4: the stream's heartbeat is the websocket ping, never a JSON frame."""
    sim = any_era
    chat = _idle_chat(sim)
    sim.http.post("/__sim/reset")
    with sim.open(chat["id"]) as stream:
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            try:
                stream.socket.recv(timeout=max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
        stream.close()
    counts = sim.counts()["chats"][chat["id"]]
    assert counts["pings"] == 0 and counts["frames"] == 1


def test_edit_sends_full_refresh(any_era: EraSim) -> None:
    sim = any_era
    chat = _idle_chat(sim)
    with sim.open(chat["id"]) as stream:
        stream.until_status("waiting")
        user = next(e["message"] for e in stream.events if e["type"] == "message")
        start = len(stream.events)
        path = f"{sim.base}/{chat['id']}/messages/{user['id']}"
        assert sim.api.patch(path, json=text("rewritten")).status_code == 200
        stream.until_status("waiting", count=2)
        refresh = stream.events[start:]
        kinds = _compact([e["type"] for e in refresh])
        prefix = ["history_reset"] if sim.era == "d" else []
        assert kinds[: len(prefix) + 2] == [*prefix, "message", "status"]
        rewritten = refresh[len(prefix)]["message"]
        assert rewritten["content"][0]["text"] == "rewritten"
        assert rewritten["id"] > user["id"]


def test_interrupt_mid_turn(any_era: EraSim) -> None:
    sim = any_era
    sim.patch(
        ttft_ms={"dist": "constant", "value": 0},
        part_gap_ms={"dist": "constant", "value": 100},
        parts_per_turn=50,
    )
    chat = sim.create_chat()
    with sim.open(chat["id"]) as stream:
        stream.until(lambda e: e["type"] == "message_part")
        assert sim.api.post(f"{sim.base}/{chat['id']}/interrupt").status_code == 200
        stream.until_status("waiting")
        statuses = stream.statuses()
        assert statuses[-1] == "waiting"
        if sim.era == "d":
            assert statuses[-2] == "interrupting"
        partial = [
            e["message"]
            for e in stream.events
            if e["type"] == "message" and e["message"]["role"] == "assistant"
        ]
        assert len(partial) == 1
        streamed = "".join(
            e["message_part"]["part"]["text"] for e in stream.events if e["type"] == "message_part"
        )
        assert partial[0]["content"][0]["text"] == streamed
    assert sim.counts()["chats"][chat["id"]]["turns_interrupted"] == 1


# ---------------------------------------------------------------- the seed client's shapes

_UUID = "uuid"
_TIME = "time"
_SEED: dict[str, dict[str, Any]] = {
    "event": {
        "type": str,
        "chat_id": _UUID,
        "message": "message",
        "message_part": "stream_part",
        "status": "status",
        "error": "error",
        "retry": "retry",
        "queued_messages": ["queued"],
    },
    "message": {
        "id": int,
        "chat_id": _UUID,
        "model_config_id": _UUID,
        "created_at": _TIME,
        "role": str,
        "content": ["part"],
        "usage": "usage",
    },
    "usage": {
        name: int
        for name in (
            "input_tokens",
            "output_tokens",
            "total_tokens",
            "reasoning_tokens",
            "cache_creation_tokens",
            "cache_read_tokens",
            "context_limit",
        )
    },
    "part": {
        "type": str,
        "text": str,
        "signature": str,
        "tool_call_id": str,
        "tool_name": str,
        "args": object,
        "args_delta": str,
        "result": object,
        "result_delta": str,
        "is_error": bool,
        "source_id": str,
        "url": str,
        "title": str,
        "media_type": str,
        "data": str,
    },
    "stream_part": {"role": str, "part": "part"},
    "status": {"status": str},
    "error": {"message": str},
    "retry": {"attempt": int, "delay_ms": int, "error": str, "retrying_at": _TIME},
    "queued": {"id": int, "chat_id": _UUID, "content": ["part"], "created_at": _TIME},
}
#: Fields the seed's structs have without ``omitempty``: always sent.
_REQUIRED = {
    "event": {"type", "chat_id"},
    "message": {"id", "chat_id", "created_at", "role"},
    "part": {"type"},
    "stream_part": {"part"},
    "status": {"status"},
    "error": {"message"},
    "retry": {"attempt", "delay_ms", "error", "retrying_at"},
    "queued": {"id", "chat_id", "content", "created_at"},
}


def _check(value: Any, shape: Any, where: str) -> None:
    """``value`` decodes into the seed's Go type ``shape`` with no field left unread."""
    if shape == _UUID:
        assert isinstance(value, str), where
        UUID(value)
    elif shape == _TIME:
        assert isinstance(value, str) and value.endswith("Z"), where
        datetime.fromisoformat(value)
    elif isinstance(shape, list):
        assert isinstance(value, list), where
        for index, item in enumerate(value):
            _check(item, shape[0], f"{where}[{index}]")
    elif isinstance(shape, str):
        fields = _SEED[shape]
        assert isinstance(value, dict), where
        assert set(value) <= set(fields), (
            f"{where}: fields the seed lacks: {set(value) - set(fields)}"
        )
        assert _REQUIRED.get(shape, set()) <= set(value), f"{where}: missing fields"
        for name, item in value.items():
            _check(item, fields[name], f"{where}.{name}")
    elif shape is not object:
        assert type(value) is shape, f"{where}: {value!r} is not {shape.__name__}"


def test_era_a_frames_have_the_seed_clients_shapes(era_a: EraSim) -> None:
    sim = era_a
    sim.patch(reasoning_parts=2, tool_steps=1, ttft_ms={"dist": "constant", "value": 200})
    chat = sim.create_chat()
    with sim.open(chat["id"]) as stream:
        stream.until_status("waiting")
        sim.patch(error_rate=1.0, error_retries=25, time_scale=0.0001)
        sim.post(chat["id"], "fail")
        sim.post(chat["id"], "queued")
        stream.until_status("error")
        sim.api.post(f"{sim.base}/{chat['id']}/interrupt")
        frames = list(stream.frames)
        events = list(stream.events)
    for frame in frames:
        assert frame.startswith('{"type":"data","data":[') and frame.endswith("]}")
    kinds = {e["type"] for e in events}
    assert {"message", "message_part", "status", "retry", "error", "queue_update"} <= kinds
    parts = {e["message_part"]["part"]["type"] for e in events if e["type"] == "message_part"}
    assert parts == {"reasoning", "text", "tool-call", "tool-result"}
    for index, event in enumerate(events):
        _check(event, "event", f"event[{index}]")


def test_stream_frames_decode_with_the_core_decoder(any_era: EraSim) -> None:
    sim = any_era
    sim.patch(tool_steps=1, reasoning_parts=1)
    chat = sim.create_chat()
    with sim.open(chat["id"]) as stream:
        stream.until_status("waiting")
        assert stream.frames and not stream.errors
        assert all(isinstance(e["type"], str) and e["chat_id"] == chat["id"] for e in stream.events)


def test_stream_of_unknown_chat_is_refused(any_era: EraSim) -> None:
    sim = any_era
    with pytest.raises(InvalidStatus) as refused:
        sim.open("6e0a4d0e-8d8c-4c2e-9d4f-000000000000")
    assert refused.value.response.status_code == 404
