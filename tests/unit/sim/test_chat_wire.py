"""The chat as each era wears it on the REST API, and the messages page's paging and errors
(Coder's own messages, from coderd's chat handlers)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loadtest.protocol.eras import Era
from loadtest.protocol.models import ChatMessage, ChatMessagePart
from loadtest.sim.chat_state import ChatState
from loadtest.sim.chat_wire import chat_wire, messages_page, with_messages_wire
from loadtest.sim.errors import ApiError

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def chat_with(n: int) -> ChatState:
    chat = ChatState("owner", "title", "model", NOW)
    for i in range(1, n + 1):
        part = ChatMessagePart(type="text", text=f"m{i}")
        chat.messages.append(
            ChatMessage(id=i, chat_id=chat.id, created_at=NOW, role="user", content=[part])
        )
    return chat


def test_era_a_wears_the_seed_chat_and_era_d_the_agent_fields() -> None:
    chat = chat_with(0)
    seed = chat_wire(Era.A, chat)
    assert "organization_id" not in seed and "children" not in seed
    assert seed["last_error"] is None
    newest = chat_wire(Era.D, chat)
    assert newest["children"] == [] and newest["client_type"] == "api"
    assert "last_error" not in newest  # omitempty since May 2026
    assert "workspace_id" not in newest and "parent_chat_id" not in newest


def test_a_sub_agent_and_its_workspace_appear_only_when_set() -> None:
    parent, child = chat_with(0), chat_with(0)
    child.parent_chat_id = child.root_chat_id = parent.id
    parent.children.append(child)
    parent.workspace_id = "ws-1"
    wire = chat_wire(Era.D, parent)
    assert wire["workspace_id"] == "ws-1"
    assert [c["parent_chat_id"] for c in wire["children"]] == [parent.id]


def test_era_a_sends_messages_with_the_chat() -> None:
    wire = with_messages_wire(Era.A, chat_with(2))
    assert [m["id"] for m in wire["messages"]] == [1, 2] and wire["chat"]["title"] == "title"


def test_a_page_is_newest_first_and_says_when_there_is_more() -> None:
    page = messages_page(chat_with(5), {"limit": "2"})
    assert [m["id"] for m in page["messages"]] == [5, 4] and page["has_more"] is True
    older = messages_page(chat_with(5), {"limit": "2", "before_id": "4"})
    assert [m["id"] for m in older["messages"]] == [3, 2]


def test_after_id_pages_oldest_first() -> None:
    page = messages_page(chat_with(5), {"after_id": "2"})
    assert [m["id"] for m in page["messages"]] == [3, 4, 5] and page["has_more"] is False


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"limit": "0"}, "Invalid limit parameter (1-200)."),
        ({"limit": "201"}, "Invalid limit parameter (1-200)."),
        ({"limit": "x"}, "Invalid limit parameter (1-200)."),
        ({"after_id": "3", "before_id": "3"}, "after_id must be less than before_id."),
    ],
)
def test_bad_paging_is_a_400_with_coders_message(query: dict[str, str], message: str) -> None:
    with pytest.raises(ApiError) as refused:
        messages_page(chat_with(1), query)
    assert (refused.value.status, refused.value.message) == (400, message)
