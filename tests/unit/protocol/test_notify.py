"""The replicas' pubsub message: exactly the JSON Go writes for the seed's struct."""

from __future__ import annotations

import pytest

from loadtest.protocol.models import ChatError
from loadtest.protocol.notify import (
    NOTIFY_PAYLOAD_LIMIT,
    ChatStreamNotifyMessage,
    stream_channel,
)

#: Every field set, in the struct's order, as Go's encoding/json writes it.
FULL = (
    b'{"after_message_id":42,"status":"running","worker_id":"9b2c0e3a-5a4e-4c1e-8f00-2d1f4c6b7a10",'
    b'"retry":{"attempt":2,"delay_ms":1500,"error":"overloaded",'
    b'"retrying_at":"2026-05-05T12:56:06.12Z","kind":"overloaded","provider":"anthropic",'
    b'"status_code":529},'
    b'"error_payload":{"message":"The model is overloaded.","detail":"try later",'
    b'"kind":"overloaded","provider":"anthropic","retryable":true,"status_code":529},'
    b'"error":"The model is overloaded.","queue_update":true,"full_refresh":true}'
)


@pytest.mark.parametrize(
    "payload",
    [
        FULL,
        b'{"after_message_id":7}',
        b'{"status":"waiting","worker_id":"w1"}',
        b'{"error":"legacy text only"}',
        b'{"queue_update":true}',
        b"{}",
    ],
)
def test_the_json_round_trips_byte_for_byte(payload: bytes) -> None:
    assert ChatStreamNotifyMessage.decode(payload).encode() == payload


def test_zero_values_are_omitted_as_omitempty_does() -> None:
    message = ChatStreamNotifyMessage(after_message_id=0, status="", queue_update=False)
    assert message.encode() == b"{}"
    assert ChatStreamNotifyMessage(after_message_id=3).wire() == {"after_message_id": 3}
    assert len(FULL) < NOTIFY_PAYLOAD_LIMIT


def test_a_bad_payload_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        ChatStreamNotifyMessage.decode(b"{nope")
    with pytest.raises(ValueError, match="not a JSON object"):
        ChatStreamNotifyMessage.decode(b"[1]")
    with pytest.raises(ValueError, match="after_message_id"):
        ChatStreamNotifyMessage.decode(b'{"after_message_id":"x"}')


def test_the_channel_is_coders() -> None:
    assert stream_channel("abc") == "chat:stream:abc"


def test_notify_message_keeps_legacy_error_beside_payload() -> None:
    notify = ChatStreamNotifyMessage.model_validate(
        {"error_payload": {"message": "m", "kind": "timeout", "retryable": True}, "error": "m"}
    )
    assert notify.error == "m"
    assert notify.error_payload == ChatError(message="m", kind="timeout", retryable=True)
    assert ChatStreamNotifyMessage(after_message_id=4).wire() == {"after_message_id": 4}
