"""Builders of stream events for the core's tests (shapes as in spec section 3.6)."""

from __future__ import annotations

from typing import Any

import orjson

MS = 1_000_000  # ns per ms: tests speak in milliseconds


def status(value: str) -> dict[str, Any]:
    return {"type": "status", "chat_id": "c", "status": {"status": value}}


def part(text: str = "x") -> dict[str, Any]:
    return {
        "type": "message_part",
        "chat_id": "c",
        "message_part": {"role": "assistant", "part": {"type": "text", "text": text}},
    }


def message(
    mid: int, role: str = "user", output_tokens: int | None = None, text: str | None = None
) -> dict[str, Any]:
    """A committed message; ``text`` is its text part (an assistant step's deltas joined)."""
    body: dict[str, Any] = {
        "id": mid,
        "chat_id": "c",
        "role": role,
        "created_at": "2026-03-01T00:00:00Z",
    }
    if text is not None:
        body["content"] = [{"type": "text", "text": text}]
    if output_tokens is not None:
        body["usage"] = {"output_tokens": output_tokens, "input_tokens": 10}
    return {"type": "message", "chat_id": "c", "message": body}


def retry(attempt: int, delay_ms: int, kind: str | None = None) -> dict[str, Any]:
    """A ``retry`` event; ``kind`` as era D classifies the error (absent in older eras)."""
    body: dict[str, Any] = {
        "attempt": attempt,
        "delay_ms": delay_ms,
        "error": "overloaded",
        "retrying_at": "2026-03-01T00:00:00Z",
    }
    if kind is not None:
        body["kind"] = kind
    return {"type": "retry", "chat_id": "c", "retry": body}


def error(payload: Any) -> dict[str, Any]:
    return {"type": "error", "chat_id": "c", "error": payload}


def queue_update(n: int) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "queue_update", "chat_id": "c"}
    if n:
        event["queued_messages"] = [
            {"id": i, "chat_id": "c", "content": [], "created_at": "2026-03-01T00:00:00Z"}
            for i in range(n)
        ]
    return event


def array_frame(*events: dict[str, Any]) -> bytes:
    return orjson.dumps(list(events)) + b"\n"


def episode_part(text: str, history: int, attempt: int, seq: int) -> dict[str, Any]:
    """An era-D text delta, numbered within its (history_version, generation_attempt)."""
    event = part(text)
    event["message_part"].update(history_version=history, generation_attempt=attempt, seq=seq)
    return event


def preview_reset() -> dict[str, Any]:
    return {"type": "preview_reset", "chat_id": "c"}
