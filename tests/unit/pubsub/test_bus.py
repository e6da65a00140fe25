"""What needs no server: URLs are checked and passwords never reach a message."""

from __future__ import annotations

import asyncio

import pytest

from loadtest.pubsub.bus import NatsPubsub, PubsubError, connect, redacted


def test_a_password_is_redacted_and_the_rest_kept() -> None:
    url = "postgresql://coder:s3cret-pw@db.internal:5432/coder?sslmode=disable"
    assert redacted(url) == "postgresql://coder:***@db.internal:5432/coder?sslmode=disable"
    assert redacted("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"


def test_an_unknown_scheme_is_refused_without_the_password() -> None:
    with pytest.raises(PubsubError) as caught:
        asyncio.run(connect("redis://user:s3cret-pw@localhost:6379"))
    assert "expected postgresql://" in str(caught.value)
    assert "s3cret-pw" not in str(caught.value)


def test_nats_carries_a_channel_on_coders_subject_and_refuses_what_coder_refuses() -> None:
    bus = NatsPubsub(client=None)
    chat = "44444444-4444-4444-4444-444444444444"
    assert bus.subject(f"chat:stream:{chat}") == f"coder.v1.pubsub.chat.stream.{chat}"
    assert bus.subject("chat:owner:abc") == "coder.v1.pubsub.chat.owner.abc"
    with pytest.raises(PubsubError, match="chat::stream"):
        bus.subject("chat::stream")
