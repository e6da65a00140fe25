"""A chat as chatd keeps it and the ledger's own transitions: request content checked as
Coder does, a new chat's state, status changes told to the watch, messages numbered once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loadtest.protocol.eras import Era
from loadtest.protocol.models import ChatInputPart, ChatMessagePart
from loadtest.sim.chat_state import ACTIVE, ChatState, input_parts, text_of
from loadtest.sim.chat_turns import ChatTurns
from loadtest.sim.errors import ApiError

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_input_text_is_trimmed_and_blank_parts_dropped() -> None:
    parts = input_parts(
        [
            ChatInputPart(type="text", text="  hello \n"),
            ChatInputPart(type="text", text="   "),
            ChatInputPart(type="text", text="again"),
        ]
    )
    assert [(p.type, p.text) for p in parts] == [("text", "hello"), ("text", "again")]


@pytest.mark.parametrize("content", [None, [], [ChatInputPart(type="text", text=" \t")]])
def test_no_text_left_is_no_content(content: list[ChatInputPart] | None) -> None:
    with pytest.raises(ApiError) as refused:
        input_parts(content)
    assert (refused.value.status, refused.value.message, refused.value.detail) == (
        400,
        "Content is required.",
        "Content cannot be empty.",
    )


def test_a_part_of_another_type_is_refused_by_its_index_and_type() -> None:
    with pytest.raises(ApiError) as refused:
        input_parts([ChatInputPart(type="text", text="ok"), ChatInputPart(type="file")])
    assert refused.value.status == 400
    assert refused.value.detail == 'content[1].type "file" is not supported.'


def test_text_of_joins_only_text_parts() -> None:
    parts = [
        ChatMessagePart(type="text", text="a"),
        ChatMessagePart(type="reasoning", text="hidden"),
        ChatMessagePart(type="tool-call", tool_call_id="x", tool_name="t"),
        ChatMessagePart(type="text", text="b"),
    ]
    assert text_of(parts) == "ab" and text_of(None) == ""


def test_a_new_chat_waits_with_nothing_in_it_and_is_active_only_while_running() -> None:
    chat = ChatState("u1", "title", "m", NOW)
    assert (chat.status, chat.active, chat.messages, chat.queue) == ("waiting", False, [], [])
    assert chat.id != ChatState("u1", "title", "m", NOW).id
    for status in ("pending", "running", "interrupting", "requires_action"):
        chat.status = status
        assert chat.active
    assert ACTIVE.isdisjoint({"waiting", "error", ""})


def test_the_watch_is_told_of_a_status_change_only_when_it_changes_and_the_chat_is_kept() -> None:
    ledger = ChatTurns(Era.D, lambda: NOW)
    told: list[tuple[str, str]] = []
    ledger.on_change = lambda chat, kind: told.append((chat.id, kind))
    loose = ChatState("u1", "t", "m", NOW)
    ledger.running(loose)  # not in the ledger (deleted, say): nobody is told
    assert told == [] and loose.status == "running"
    chat = ChatState("u1", "t", "m", NOW)
    ledger.chats[chat.id] = chat
    ledger.running(chat)
    ledger.running(chat)  # already running: no change to tell
    ledger.finish_turn(chat)
    assert told == [(chat.id, "status_change"), (chat.id, "status_change")]


def test_messages_are_numbered_across_the_ledger_and_count_their_text() -> None:
    clock = iter([NOW.replace(second=s) for s in range(60)])
    ledger = ChatTurns(Era.D, lambda: next(clock))
    a, b = ChatState("u1", "t", "m", NOW), ChatState("u1", "t", "m", NOW)
    for chat, words in ((a, "four"), (b, "sixsix"), (a, "ab")):
        ledger.chats[chat.id] = chat
        ledger.text_part(chat, "text", words)
        ledger.finish_step(chat, 1)
    assert [m.id for m in a.messages] == [1, 3] and [m.id for m in b.messages] == [2]
    assert (a.history_chars, b.history_chars) == (6, 6)
    # Each message's time is the clock's at its commit, and so is the chat's updated_at.
    assert a.updated_at == a.messages[-1].created_at > b.messages[0].created_at
