"""Payloads read with each field's type checked: a bad field is a decode error naming it."""

from __future__ import annotations

from typing import Any

from loadtest.core import payloads
from tests.unit.events import message, queue_update, retry, status


class Errors:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def decode_error(self, reason: str, t: int) -> None:
        self.reasons.append(reason)


def test_good_payloads_read_clean() -> None:
    errors = Errors()
    assert (
        payloads.message(message(3, "assistant"), errors, 0) == message(3, "assistant")["message"]
    )
    assert payloads.status(status("running"), errors, 0) == "running"
    assert payloads.retry(retry(1, 250, "overloaded"), errors, 0) == (250, "overloaded")
    assert payloads.queue_length({"type": "queue_update"}, errors, 0) == 0
    assert payloads.queue_length(queue_update(2), errors, 0) == 2
    assert payloads.output_tokens({"output_tokens": 7}, errors, 0) == 7
    assert errors.reasons == []


def test_each_bad_field_is_named_and_nothing_raises() -> None:
    errors = Errors()
    bad_id: dict[str, Any] = message(3)
    bad_id["message"]["id"] = "three"
    action = {"type": "action_required", "action_required": {"tool_calls": [{"x": 1}]}}
    assert payloads.message(bad_id, errors, 0) is None
    assert payloads.status({"type": "status", "status": {"status": 5}}, errors, 0) is None
    assert payloads.retry({"type": "retry", "retry": {"delay_ms": -1}}, errors, 0) == (None, None)
    assert payloads.queue_length({"type": "queue_update", "queued_messages": {}}, errors, 0) is None
    assert payloads.tool_call_ids(action, errors, 0) is None
    assert payloads.output_tokens({"output_tokens": 1 << 40}, errors, 0) == 0
    assert errors.reasons == [
        "message.message.id: expected an integer, got string",
        "status.status.status: expected a string, got number 5",
        "retry.retry.delay_ms: expected milliseconds >= 0, got number -1",
        "queue_update.queued_messages: expected an array, got object",
        "action_required.tool_calls[].tool_call_id: expected strings, got array",
        "message.message.usage.output_tokens: expected a count, got number 1099511627776",
    ]


def test_json_types_are_named_as_json_names_them() -> None:
    names = [payloads.json_type(v) for v in (None, True, 3, "s", [], {}, 1e300)]
    assert names == [
        "null",
        "boolean",
        "number 3",
        "string",
        "array",
        "object",
        "number out of range",
    ]
