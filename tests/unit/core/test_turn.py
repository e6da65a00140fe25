"""A turn's error from any of Coder's error forms, and where its latencies start."""

from __future__ import annotations

from loadtest.core.turn import ErrorInfo, Turn


def test_a_chat_error_keeps_its_fields() -> None:
    payload = {
        "message": "rate limited",
        "kind": "rate_limit",
        "provider": "anthropic",
        "retryable": True,
        "status_code": 429,
    }
    assert ErrorInfo.from_payload("status_error", payload) == ErrorInfo(
        "status_error", "rate limited", "rate_limit", "anthropic", True, 429
    )


def test_legacy_forms_are_generic_and_wrong_types_are_dropped() -> None:
    assert ErrorInfo.from_payload("stream_event", "boom") == ErrorInfo(
        "stream_event", "boom", "generic"
    )
    assert ErrorInfo.from_payload("stream_event", None).message == ""
    legacy = ErrorInfo.from_payload(
        "create_chat",
        {"detail": "no model", "provider": 3, "retryable": "yes", "status_code": "500"},
    )
    assert legacy == ErrorInfo("create_chat", "no model", "generic", None, None, None)


def test_latencies_start_at_the_intended_start_when_there_is_one() -> None:
    assert Turn(t0=100).origin == 100
    assert Turn(t0=100, intended=40).origin == 40
