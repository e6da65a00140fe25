"""The protocol models accept every era's shapes and keep what they do not know."""

from __future__ import annotations

import pytest

from loadtest.protocol import PATHS, Era, era_from_frame, era_from_version, parse_version
from loadtest.protocol.models import (
    Chat,
    ChatError,
    ChatStreamEvent,
    ChatWithMessages,
    CreateChatMessageResponse,
    Response,
)

CHAT = {
    "id": "3f1c1b9e-0000-4000-8000-000000000001",
    "owner_id": "3f1c1b9e-0000-4000-8000-000000000002",
    "last_model_config_id": "3f1c1b9e-0000-4000-8000-000000000003",
    "title": "t",
    "status": "pending",
    "created_at": "2026-02-28T10:00:00Z",
    "updated_at": "2026-02-28T10:00:00Z",
    "archived": False,
}


@pytest.mark.parametrize(
    ("last_error", "expected"),
    [
        (None, None),
        ("provider exploded", ChatError(message="provider exploded", kind="generic")),
        (
            {
                "message": "m",
                "kind": "overloaded",
                "provider": "anthropic",
                "retryable": True,
                "status_code": 529,
                "detail": "d",
            },
            ChatError(
                message="m",
                kind="overloaded",
                provider="anthropic",
                retryable=True,
                status_code=529,
                detail="d",
            ),
        ),
    ],
)
def test_last_error_in_every_era_form(last_error: object, expected: ChatError | None) -> None:
    chat = Chat.model_validate({**CHAT, "last_error": last_error})
    assert chat.last_error_info() == expected


def test_era_d_chat_omits_last_error_and_keeps_new_fields() -> None:
    chat = Chat.model_validate({**CHAT, "organization_id": "o", "children": [], "mode": "x"})
    assert chat.last_error is None
    assert chat.wire()["children"] == []
    assert "last_error" not in chat.wire()


def test_unknown_event_type_and_fields_are_kept() -> None:
    event = ChatStreamEvent.model_validate(
        {"type": "preview_reset_v9", "chat_id": "c", "novel": {"x": 1}}
    )
    assert event.type == "preview_reset_v9"
    assert event.wire() == {"type": "preview_reset_v9", "chat_id": "c", "novel": {"x": 1}}


@pytest.mark.parametrize(
    "error",
    [
        "legacy string",
        {"message": "seed form"},
        {
            "message": "march",
            "kind": "rate_limit",
            "provider": "openai",
            "retryable": True,
            "status_code": 429,
        },
        {"message": "may", "detail": "d", "kind": "auth", "retryable": False},
    ],
)
def test_error_event_accepts_all_payload_forms(error: object) -> None:
    event = ChatStreamEvent.model_validate({"type": "error", "chat_id": "c", "error": error})
    assert event.error is not None


def test_retry_event_seed_and_march_forms() -> None:
    seed = {"attempt": 2, "delay_ms": 2000, "error": "e", "retrying_at": "2026-03-01T00:00:02Z"}
    event = ChatStreamEvent.model_validate({"type": "retry", "retry": seed})
    assert event.retry is not None and event.retry.attempt == 2 and event.retry.kind is None
    march = {**seed, "kind": "overloaded", "provider": "anthropic", "status_code": 529}
    event = ChatStreamEvent.model_validate({"type": "retry", "retry": march})
    assert event.retry is not None and event.retry.status_code == 529


def test_bodies_the_tool_reads() -> None:
    queued = CreateChatMessageResponse.model_validate(
        {
            "queued": True,
            "queued_message": {
                "id": 3,
                "chat_id": "c",
                "content": [],
                "created_at": "2026-03-01T00:00:00Z",
            },
        }
    )
    assert queued.queued and queued.queued_message is not None and queued.message is None
    with_messages = ChatWithMessages.model_validate(
        {"chat": CHAT, "messages": [], "queued_messages": []}
    )
    assert with_messages.chat.status == "pending"
    assert Response(message="Bad.", detail="why").text() == "Bad.: why"
    assert Response(detail="only detail").text() == "only detail"
    assert Response().text() == "chat stream returned an error"


@pytest.mark.parametrize(
    ("version", "era"),
    [
        ("v2.38.0+abc1234", Era.D),
        ("v2.40.2", Era.D),
        ("v2.37.1+abc1234", Era.C),
        ("v2.31.0+abc", None),
        ("v2.38.0-devel+abc", None),
        ("nonsense", None),
    ],
)
def test_era_from_buildinfo_version(version: str, era: Era | None) -> None:
    assert era_from_version(version) == era


def test_parse_version() -> None:
    assert parse_version("v2.37.1+abc1234") == (2, 37, 1)
    assert parse_version("2.9") == (2, 9, 0)
    assert parse_version("x") is None


@pytest.mark.parametrize(
    ("frame", "era"),
    [
        (b'{"type":"ping"}', Era.A),
        (b'[{"type":"status"}]\n', Era.B),
        (" \n[", Era.B),
        (b"", None),
        (b"42", None),
    ],
)
def test_era_from_first_frame(frame: bytes | str, era: Era | None) -> None:
    assert era_from_frame(frame) == era


def test_path_table_per_era() -> None:
    a, b, d = PATHS[Era.A], PATHS[Era.B], PATHS[Era.D]
    assert a.stream("x") == "/api/experimental/chats/x/stream"
    assert a.archive("x") == "/api/experimental/chats/x/archive"
    assert a.get_returns_messages and a.envelope_frames and a.has_pending
    assert b.archive("x") == "/api/experimental/chats/x" and not b.envelope_frames
    assert d.chats() == "/api/v2/chats" and d.promote_accepted and not d.has_pending
    assert d.models("default") == "/api/v2/organizations/default/chats/models"
    assert a.models() == "/api/experimental/chats/models"


def test_where_each_era_configures_providers_and_models() -> None:
    """Section 8.2: C's providers are the experimental mount's (its /api/v2 ones are
    reserved) and its models the organization's; D's providers are AI providers."""
    a, b, c, d = (PATHS[era] for era in Era)
    for early in (a, b):
        assert early.providers() == "/api/experimental/chats/providers"
        assert early.model_config("m") == "/api/experimental/chats/model-configs/m"
    assert c.chats() == "/api/v2/chats" and not c.has_pending and not c.envelope_frames
    assert c.provider("p") == "/api/experimental/chats/providers/p"
    assert c.models("o") == c.model_configs("o") == "/api/v2/organizations/o/chats/models"
    assert c.model_config("m") == "/api/v2/organizations/default/chats/models/m"
    assert d.provider("p") == "/api/v2/ai/providers/p"
    assert d.model_config("m", "o") == "/api/v2/organizations/o/chats/models/m"
