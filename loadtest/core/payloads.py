"""Stream events' payloads read with each field's type checked: clean values, or a decode error.

The reader must outlive bad servers: a field of the wrong type is a ``decode`` error recorded
with the field's name (``message.message.id: expected an integer, got string``), and the
caller skips what it cannot use; nothing here raises. Pure: no I/O, no clock.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

from loadtest.core.decode import Event
from loadtest.protocol.events import ACTION_REQUIRED, MESSAGE, QUEUE_UPDATE, RETRY, STATUS

#: Token counts above this are not believed (and would not fit the report's integers).
MAX_OUTPUT_TOKENS: Final = 1 << 31


class DecodeErrors(Protocol):
    """Where a malformed field is told (``core.recorder.Recorder`` in a run)."""

    def decode_error(self, reason: str, t: int) -> None: ...


def malformed(recorder: DecodeErrors, field: str, expected: str, value: Any, t: int) -> None:
    """A field of the wrong type: a decode error naming the field; the event is skipped."""
    recorder.decode_error(f"{field}: expected {expected}, got {json_type(value)}", t)


def json_type(value: Any) -> str:
    """How JSON names the type of a decoded value, for error messages."""
    if value is None:
        return "null"
    if type(value) is bool:
        return "boolean"
    if type(value) in (int, float):
        return f"number {value}" if abs(value) < 1e15 else "number out of range"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


def message(event: Event, recorder: DecodeErrors, t: int) -> dict[str, Any] | None:
    """A ``message`` event's message, its id, role and usage checked (None: malformed)."""
    body = event.get(MESSAGE)
    if type(body) is not dict:
        malformed(recorder, "message.message", "an object", body, t)
        return None
    for key, kind, expected in (("id", int, "an integer"), ("role", str, "a string")):
        value = body.get(key)
        if value is not None and type(value) is not kind:
            malformed(recorder, f"message.message.{key}", expected, value, t)
            return None
    usage = body.get("usage")
    if usage is not None and type(usage) is not dict:
        malformed(recorder, "message.message.usage", "an object", usage, t)
        return None
    return body


def output_tokens(usage: dict[str, Any], recorder: DecodeErrors, t: int) -> int:
    """An assistant message's ``usage.output_tokens`` (0 when absent or unbelievable)."""
    tokens = usage.get("output_tokens")
    if tokens is None:
        return 0
    if type(tokens) is not int or not 0 <= tokens < MAX_OUTPUT_TOKENS:
        malformed(recorder, "message.message.usage.output_tokens", "a count", tokens, t)
        return 0
    return tokens


def status(event: Event, recorder: DecodeErrors, t: int) -> str | None:
    """A ``status`` event's status (None: malformed)."""
    payload = event.get(STATUS)
    if type(payload) is not dict:
        malformed(recorder, "status.status", "an object", payload, t)
        return None
    value = payload.get("status")
    if type(value) is not str:
        malformed(recorder, "status.status.status", "a string", value, t)
        return None
    return value


def queue_length(event: Event, recorder: DecodeErrors, t: int) -> int | None:
    """How many messages a ``queue_update`` says wait (none sent: 0; None: malformed)."""
    queued = event.get("queued_messages")
    if queued is None:
        return 0
    if type(queued) is not list:
        malformed(recorder, f"{QUEUE_UPDATE}.queued_messages", "an array", queued, t)
        return None
    return len(queued)


def tool_call_ids(event: Event, recorder: DecodeErrors, t: int) -> list[str] | None:
    """The tool call ids an ``action_required`` waits on (None: malformed)."""
    body = event.get(ACTION_REQUIRED)
    calls = body.get("tool_calls") if type(body) is dict else None
    if type(calls) is not list:
        malformed(recorder, "action_required.tool_calls", "an array", calls, t)
        return None
    ids = [c.get("tool_call_id") for c in calls if type(c) is dict]
    named = [i for i in ids if type(i) is str]
    if not named or len(named) != len(calls):
        malformed(recorder, "action_required.tool_calls[].tool_call_id", "strings", ids, t)
        return None
    return named


def retry(event: Event, recorder: DecodeErrors, t: int) -> tuple[int | None, str | None] | None:
    """A ``retry`` event's (delay in ms, error kind), each None when absent or malformed
    (None for all of it: no retry object at all)."""
    body = event.get(RETRY)
    if type(body) is not dict:
        malformed(recorder, "retry.retry", "an object", body, t)
        return None
    delay = body.get("delay_ms")
    if delay is not None and (type(delay) is not int or delay < 0):
        malformed(recorder, "retry.retry.delay_ms", "milliseconds >= 0", delay, t)
        delay = None
    kind = body.get("kind")
    if kind is not None and type(kind) is not str:
        malformed(recorder, "retry.retry.kind", "a string", kind, t)
        kind = None
    return delay, kind
