"""Every frame form of every era, and every kind of bad frame, decode to values."""

from __future__ import annotations

import json

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from loadtest.core.decode import MAX_FRAME_BYTES, PING, STREAM_ERROR_KEY, DecodeError, decode_frame

CHAT_ID = "6b1f7a52-7f2c-4d5e-9a43-0b6f3f0e2a11"
STATUS = {"type": "status", "chat_id": CHAT_ID, "status": {"status": "running"}}
PART = {
    "type": "message_part",
    "chat_id": CHAT_ID,
    "message_part": {"role": "assistant", "part": {"type": "text", "text": "Hel"}},
}


def go_json(value: object) -> bytes:
    """Like Go's json.Encoder: compact, with a trailing newline (era B+ frames)."""
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"


# --- era A: the seed's ServerSentEvent envelope, as coderd's OneWayWebSocketEventSender
# writes it and StreamChat reads it.


def test_era_a_data_envelope_with_a_batch() -> None:
    frame = go_json({"type": "data", "data": [STATUS, PART]})
    assert decode_frame(frame) == [STATUS, PART]


def test_era_a_ping_is_not_data() -> None:
    assert decode_frame(b'{"type":"ping"}') is PING
    assert decode_frame(go_json({"type": "ping", "data": None})) is PING


def test_era_a_error_envelope_becomes_an_error_event_like_the_seed_client() -> None:
    body = {"message": "Internal error.", "detail": "failed to load initial snapshot"}
    events = decode_frame(go_json({"type": "error", "data": body}))
    assert events == [
        {
            "type": "error",
            "error": {"message": "Internal error.: failed to load initial snapshot"},
            STREAM_ERROR_KEY: True,
        }
    ]
    only_message = decode_frame(go_json({"type": "error", "data": {"message": "Gone."}}))
    assert isinstance(only_message, list) and only_message[0]["error"]["message"] == "Gone."
    empty = decode_frame(go_json({"type": "error"}))
    assert isinstance(empty, list)
    assert empty[0]["error"]["message"] == "chat stream returned an error"


def test_era_a_unknown_envelope_type_is_a_decode_error() -> None:
    assert decode_frame(b'{"type":"pong","data":[]}') == DecodeError("unknown envelope type 'pong'")


def test_era_a_data_that_is_not_an_array() -> None:
    result = decode_frame(b'{"type":"data","data":{"type":"status"}}')
    assert isinstance(result, DecodeError) and "not an array" in result.reason


# --- era B+: bare arrays with Go's trailing newline.


def test_era_b_bare_array_with_trailing_newline() -> None:
    assert decode_frame(go_json([STATUS, PART, PART])) == [STATUS, PART, PART]


def test_era_d_new_event_types_and_fields_pass_through() -> None:
    newer = {"type": "preview_reset", "chat_id": CHAT_ID, "seq": 3, "whatever": [1]}
    assert decode_frame(go_json([newer])) == [newer]


def test_text_frames_as_str_decode_too() -> None:
    assert decode_frame(go_json([STATUS]).decode()) == [STATUS]


def test_empty_batch_is_valid() -> None:
    assert decode_frame(b"[]\n") == []


# --- bad input: values with reasons, never exceptions.


def test_malformed_json() -> None:
    result = decode_frame(b'[{"type":"status",')
    assert isinstance(result, DecodeError) and result.reason.startswith("invalid JSON")


def test_event_without_type() -> None:
    assert decode_frame(b'[{"chat_id":"x"}]') == DecodeError("event without a string 'type'")
    assert decode_frame(b'[{"type":7}]') == DecodeError("event without a string 'type'")


def test_event_that_is_not_an_object() -> None:
    result = decode_frame(b"[1,2]")
    assert isinstance(result, DecodeError) and "not an object" in result.reason


def test_scalar_frame() -> None:
    result = decode_frame(b'"hello"')
    assert isinstance(result, DecodeError) and "JSON str" in result.reason


def test_oversized_frame() -> None:
    frame = b"[" + b" " * MAX_FRAME_BYTES + b"]"
    result = decode_frame(frame)
    assert isinstance(result, DecodeError) and "exceeds" in result.reason


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=512))
def test_any_bytes_give_events_or_a_decode_error(data: bytes) -> None:
    result = decode_frame(data)
    assert result is PING or isinstance(result, DecodeError | list)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.sampled_from(["type", "data", "x"]), children, max_size=3)
        ),
        max_leaves=12,
    )
)
def test_any_json_value_gives_events_or_a_decode_error(value: object) -> None:
    result = decode_frame(orjson.dumps(value))
    if isinstance(result, list):
        assert all(isinstance(event, dict) and isinstance(event["type"], str) for event in result)
    else:
        assert result is PING or isinstance(result, DecodeError)
