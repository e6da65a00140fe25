"""Failures ``chatload sim`` can be ordered to produce: provider errors with Coder's retry
policy, and transport faults on the stream."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from loadtest.core.decode import STREAM_ERROR_KEY
from tests.integration.conftest import EraSim

#: Coder's backoff scaled so 24 retries (1143 simulated seconds) take about half a second.
FAST_RETRIES = {"time_scale": 0.0005, "ttft_ms": {"dist": "constant", "value": 0}}


def _events(stream_events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in stream_events if e["type"] == kind]


def _idle(sim: EraSim) -> str:
    chat = sim.create_chat()
    sim.wait_idle(chat["id"])
    return chat["id"]


def test_retry_then_recovery(any_era: EraSim) -> None:
    sim = any_era
    chat_id = _idle(sim)
    sim.patch(error_rate=1.0, error_retries=3, **FAST_RETRIES)
    sim.http.post("/__sim/reset")
    with sim.open(chat_id) as stream:
        stream.until_status("waiting")
        before = datetime.now(UTC)
        sim.post(chat_id)
        stream.until_status("waiting", count=2)
        after = datetime.now(UTC)
        retries = [e["retry"] for e in _events(stream.events, "retry")]
    assert [r["attempt"] for r in retries] == [1, 2, 3]
    assert [r["delay_ms"] for r in retries] == [1000, 2000, 4000]
    if sim.era == "a":
        assert all(set(r) == {"attempt", "delay_ms", "error", "retrying_at"} for r in retries)
    else:
        assert all(r["kind"] == "overloaded" and r["status_code"] == 529 for r in retries)
        assert all(r["provider"] == "openai" for r in retries)
    # retrying_at is the scaled time: each falls between the post and the turn's end (plus
    # its own scaled wait), where Coder's unscaled backoff (1, 2, 4 s) would put the last
    # one seconds after the end; and the turn waited the scaled backoff, not the 7 s injected.
    scale = FAST_RETRIES["time_scale"]
    slack = timedelta(milliseconds=50)  # the sim's clock and ours: the same one, rounded
    for retry in retries:
        retrying_at = datetime.fromisoformat(retry["retrying_at"])
        wait = timedelta(milliseconds=retry["delay_ms"] * scale)
        assert before - slack <= retrying_at <= after + wait + slack, (before, retry, after)
    unscaled = timedelta(milliseconds=sum(r["delay_ms"] for r in retries))
    assert after - before < unscaled, "the backoff slept is the scaled one"
    assert stream.statuses()[-1] == "waiting"
    assert "error" not in stream.statuses()
    counts = sim.counts()["chats"][chat_id]
    assert counts["retry_events"] == 3
    assert counts["turns_completed"] == 1
    assert counts["error_events"] == 0


def test_retry_then_error(any_era: EraSim) -> None:
    sim = any_era
    chat_id = _idle(sim)
    sim.patch(error_rate=1.0, error_retries=25, **FAST_RETRIES)
    sim.http.post("/__sim/reset")
    with sim.open(chat_id) as stream:
        stream.until_status("waiting")
        sim.post(chat_id)
        stream.until_status("error")
        retries = [e["retry"] for e in _events(stream.events, "retry")]
        errors = [e["error"] for e in _events(stream.events, "error")]
    assert [r["attempt"] for r in retries] == list(range(1, 25))
    assert [r["delay_ms"] for r in retries][:8] == [
        1000,
        2000,
        4000,
        8000,
        16000,
        32000,
        60000,
        60000,
    ]
    assert len(errors) == 1
    error = errors[0]
    message = error["message"]
    if sim.era == "a":
        assert error == {"message": message}
    elif sim.era == "b":
        assert error == {
            "message": message,
            "kind": "overloaded",
            "provider": "openai",
            "retryable": True,
            "status_code": 529,
        }
    else:
        assert error["detail"] and error["kind"] == "overloaded" and error["retryable"] is True
    chat = sim.api.get(f"{sim.base}/{chat_id}").json()
    chat = chat.get("chat", chat)
    assert chat["status"] == "error"
    if sim.era == "d":
        assert chat["last_error"] == error
    else:
        assert chat["last_error"] == message
    counts = sim.counts()["chats"][chat_id]
    assert (counts["turns_failed"], counts["error_events"], counts["retry_events"]) == (1, 1, 24)
    sim.restore()
    sim.post(chat_id)
    chat = sim.wait_idle(chat_id)
    assert chat["status"] == "waiting"
    assert chat.get("last_error") is None and (("last_error" in chat) is (sim.era != "d"))


def test_non_retryable_error_is_final_at_once(era_b: EraSim) -> None:
    sim = era_b
    chat_id = _idle(sim)
    sim.patch(error_rate=1.0, error_kind="auth", **FAST_RETRIES)
    with sim.open(chat_id) as stream:
        stream.until_status("waiting")
        sim.post(chat_id)
        stream.until_status("error")
    assert not _events(stream.events, "retry")
    error = _events(stream.events, "error")[0]["error"]
    assert (error["kind"], error["retryable"], error["status_code"]) == ("auth", False, 401)


# ---------------------------------------------------------------- transport faults


def _fault_turn(sim: EraSim, **faults: Any) -> tuple[str, Any]:
    """Open a stream on an idle chat, order a fault, start a turn; (chat id, stream)."""
    chat_id = _idle(sim)
    sim.patch(
        parts_per_turn=10,
        part_gap_ms={"dist": "constant", "value": 5},
        faults=faults,
    )
    stream = sim.open(chat_id)
    stream.until_status("waiting")
    sim.post(chat_id)
    return chat_id, stream


@pytest.mark.parametrize("era", ["a", "b"])
def test_drop_mid_turn(era: str, request: pytest.FixtureRequest) -> None:
    sim: EraSim = request.getfixturevalue(f"era_{era}")
    _, stream = _fault_turn(sim, drop_rate=1.0)
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            stream.socket.recv(timeout=5)
    assert closed.value.rcvd is None, "no close frame: the connection was cut"
    parts = [1 for frame in stream.frames if "message_part" in frame]
    assert len(parts) < 10


@pytest.mark.parametrize("era", ["a", "d"])
def test_close_with_code(era: str, request: pytest.FixtureRequest) -> None:
    sim: EraSim = request.getfixturevalue(f"era_{era}")
    _, stream = _fault_turn(sim, close_rate=1.0, close_code=4000)
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            stream.socket.recv(timeout=5)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
        4000,
        "chatload sim: injected close",
    )


@pytest.mark.parametrize("era", ["a", "b"])
def test_malformed_frame(era: str, request: pytest.FixtureRequest) -> None:
    sim: EraSim = request.getfixturevalue(f"era_{era}")
    chat_id, stream = _fault_turn(sim, malformed_rate=1.0)
    with stream:
        stream.until_status("waiting", count=2)
    assert len(stream.errors) == 1
    assert stream.errors[0].reason.startswith("invalid JSON")
    counts = sim.counts()["chats"][chat_id]
    assert counts["frames"] >= len(stream.frames)


def test_stall(era_a: EraSim) -> None:
    sim = era_a
    _, stream = _fault_turn(sim, stall_rate=1.0, stall_ms=400)
    arrivals = []
    with stream:
        while "waiting" not in stream.statuses()[1:]:
            assert stream.read()
            arrivals.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert max(gaps) >= 0.35
    assert sum(gaps) < 10  # no stall but the one ordered (loose: the machine may be busy)


def test_stream_error_era_a_is_an_error_frame(era_a: EraSim) -> None:
    sim = era_a
    chat_id = _idle(sim)
    sim.patch(faults={"stream_error_rate": 1.0})
    stream = sim.open(chat_id)
    stream.drain_until_closed()
    assert stream.frames[0].startswith('{"type":"error","data":{"message":')
    (event,) = stream.events
    assert event["type"] == "error" and event[STREAM_ERROR_KEY] is True
    assert event["error"]["message"].startswith("Internal error streaming chat.: ")


def test_stream_error_era_b_is_http_500(era_b: EraSim) -> None:
    sim = era_b
    chat_id = _idle(sim)
    sim.patch(faults={"stream_error_rate": 1.0})
    with pytest.raises(InvalidStatus) as refused:
        sim.open(chat_id)
    assert refused.value.response.status_code == 500
    assert b'"message":"Internal error streaming chat."' in refused.value.response.body
