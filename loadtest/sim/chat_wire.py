"""The REST shapes of the simulator's chats (``codersdk.Chat``, pages of messages) per era.

Apart from the state machine (``chats.py``), which decides what happens, not how it is worn.
"""

from __future__ import annotations

from typing import Any

from loadtest.protocol.eras import Era
from loadtest.protocol.models import Chat as ChatModel
from loadtest.protocol.models import ChatMessagesResponse, ChatWithMessages
from loadtest.sim.accounts import ORGANIZATION_ID
from loadtest.sim.chat_state import ChatState
from loadtest.sim.errors import ApiError


def chat_wire(era: Era, chat: ChatState) -> dict[str, Any]:
    """``codersdk.Chat`` as this era sends it."""
    fields: dict[str, Any] = {}
    if era is not Era.A:
        fields.update(
            organization_id=ORGANIZATION_ID,
            pin_order=0,
            mcp_server_ids=[],
            labels={},
            has_unread=False,
        )
    if era is Era.D:
        fields.update(
            last_turn_summary=None,
            summary=None,
            shared=False,
            client_type="api",
            # Section 9.1: a root chat's sub-agents (always [] on a child: depth 1).
            children=[chat_wire(era, child) for child in chat.children],
            queued_for_capacity=chat.queued_for_capacity,
        )
    # Section 10: omitted when unset (``omitempty``).
    for name in ("workspace_id", "parent_chat_id", "root_chat_id"):
        if getattr(chat, name) is not None:
            fields[name] = getattr(chat, name)
    if era in (Era.C, Era.D):
        # A ChatError object since May 2026 (#24919), omitted when there is none.
        if chat.last_error is not None:
            fields["last_error"] = chat.last_error.chat_error()
    else:
        fields["last_error"] = chat.last_error.message if chat.last_error else None
    return ChatModel(
        id=chat.id,
        owner_id=chat.owner_id,
        last_model_config_id=chat.model_config_id,
        title=chat.title,
        status=chat.status,
        created_at=chat.created_at,
        updated_at=chat.updated_at,
        archived=chat.archived,
        **fields,
    ).wire()


def with_messages_wire(era: Era, chat: ChatState) -> dict[str, Any]:
    """Era a's ``ChatWithMessages``."""
    return ChatWithMessages(
        chat=ChatModel.model_validate(chat_wire(era, chat)),
        messages=chat.messages,
        queued_messages=list(chat.queue),
    ).wire()


def messages_page(chat: ChatState, query: dict[str, str]) -> dict[str, Any]:
    """``GET /chats/{id}/messages``: newest first, or oldest first after ``after_id``."""
    try:
        limit = int(query.get("limit", "50"))
        before = int(query["before_id"]) if "before_id" in query else None
        after = int(query["after_id"]) if "after_id" in query else None
    except ValueError:
        raise ApiError(400, "Invalid limit parameter (1-200).") from None
    if not 1 <= limit <= 200:
        raise ApiError(400, "Invalid limit parameter (1-200).")
    if before is not None and after is not None and after >= before:
        raise ApiError(400, "after_id must be less than before_id.")
    rows = [
        m
        for m in chat.messages
        if (before is None or m.id < before) and (after is None or m.id > after)
    ]
    if after is None:
        rows.reverse()
    return ChatMessagesResponse(
        messages=rows[:limit], queued_messages=list(chat.queue), has_more=len(rows) > limit
    ).wire()
