"""Websocket text frame -> stream events. The hot path: orjson and plain dicts, no pydantic.

Both frame forms are accepted whatever era was detected, so a client never misreads a server:
- era A: ``{"type":"ping"}``, ``{"type":"data","data":[event,...]}``,
  ``{"type":"error","data":<codersdk.Response>}``;
- era B+: ``[event, ...]`` (Go's encoder adds a trailing newline; orjson skips it).

A frame that cannot be read becomes a ``DecodeError`` value with the reason: decoding never
raises, so one bad frame never kills a user.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from loadtest.protocol.constants import READ_LIMIT_BYTES
from loadtest.protocol.events import ERROR

#: The client read limit Coder's own SDK sets (``loadtest.protocol.constants``).
MAX_FRAME_BYTES: Final = READ_LIMIT_BYTES

#: Key set on the error event synthesised from an era-A ``error`` envelope, so the turn
#: tracker can tell a stream failure from a provider error event.
STREAM_ERROR_KEY: Final = "chatload_stream_error"

#: Era A's envelope types (the seed's ``codersdk.ServerSentEventType``): not event kinds.
ENVELOPE_DATA: Final = "data"
ENVELOPE_PING: Final = "ping"
ENVELOPE_ERROR: Final = "error"

Event = dict[str, Any]


class Ping:
    """An era-A ``{"type":"ping"}`` envelope: keep-alive, never data."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "PING"


PING: Final = Ping()


class DecodeError:
    """A frame that is not valid JSON or not of the protocol's shape."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"DecodeError({self.reason!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DecodeError) and other.reason == self.reason

    def __hash__(self) -> int:
        return hash(self.reason)


Decoded = list[Event] | Ping | DecodeError

_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


def decode_frame(data: bytes | str) -> Decoded:
    """The events of one text frame, ``PING``, or a ``DecodeError`` saying why not."""
    if len(data) > MAX_FRAME_BYTES:
        return DecodeError(f"frame of {len(data)} bytes exceeds the {MAX_FRAME_BYTES} limit")
    try:
        value = _loads(data)
    except _JSONDecodeError as exc:
        return DecodeError(f"invalid JSON: {exc}")
    if type(value) is list:
        return _checked(value)
    if type(value) is dict:
        return _from_envelope(value)
    return DecodeError(f"frame is a JSON {type(value).__name__}, not an array or envelope")


def _checked(batch: list[Any]) -> list[Event] | DecodeError:
    for event in batch:
        if type(event) is not dict:
            return DecodeError(f"event is a JSON {type(event).__name__}, not an object")
        if type(event.get("type")) is not str:
            return DecodeError("event without a string 'type'")
    return batch


def _from_envelope(envelope: dict[str, Any]) -> Decoded:
    envelope_type = envelope.get("type")
    if envelope_type == ENVELOPE_DATA:
        data = envelope.get("data")
        if type(data) is not list:
            return DecodeError(f"'data' envelope holds a {type(data).__name__}, not an array")
        return _checked(data)
    if envelope_type == ENVELOPE_PING:
        return PING
    if envelope_type == ENVELOPE_ERROR:
        return [_stream_error_event(envelope.get("data"))]
    return DecodeError(f"unknown envelope type {envelope_type!r}")


def _stream_error_event(body: Any) -> Event:
    """The error event the seed's ``StreamChat`` makes of an ``error`` envelope."""
    message = "chat stream returned an error"
    if isinstance(body, dict):
        text = str(body.get("message") or "").strip()
        detail = str(body.get("detail") or "").strip()
        if text and detail:
            message = f"{text}: {detail}"
        elif text or detail:
            message = text or detail
    elif isinstance(body, str) and body.strip():
        message = body.strip()
    return {"type": ERROR, ERROR: {"message": message}, STREAM_ERROR_KEY: True}
