"""Building a trace from chats and messages: turns, times, hashes and slots, exactly."""

from __future__ import annotations

from datetime import UTC, datetime

from loadtest.trace.build import Message, SourceChat, build_trace, opaque, turns_of
from loadtest.trace.files import encode, read_trace_bytes
from loadtest.trace.model import TraceTurn

T0 = datetime(2026, 12, 8, 9, 0, tzinfo=UTC).timestamp()
SALT = b"test-salt"


def agent_chat() -> SourceChat:
    """Two turns: the first with two steps (execute, spawn_agent), the second unanswered."""
    return SourceChat(
        id="chat-1",
        created=T0,
        workspace="ws-A",
        messages=[
            Message(T0 + 0.2, "system", visible=False, text_chars=900),
            Message(T0 + 0.25, "user", text_chars=42),
            Message(T0 + 0.3, "user", visible=False, text_chars=500),  # context, not a turn
            Message(T0 + 2.0, "assistant", tools=("execute", "spawn_agent"), output_tokens=30),
            Message(T0 + 3.0, "tool"),
            Message(T0 + 3.1, "tool"),
            Message(T0 + 6.5, "assistant", output_tokens=12),
            Message(T0 + 16.5, "user", text_chars=7),
        ],
    )


def test_turns_are_cut_at_each_visible_user_message() -> None:
    assert turns_of(agent_chat()) == [
        TraceTurn(
            think_s=0.25,
            prompt_chars=42,
            steps=2,
            tools={"execute": 1, "spawn_agent": 1},
            subagents=1,
            output_tokens=42,
            duration_s=6.25,
        ),
        TraceTurn(
            think_s=10.0,
            prompt_chars=7,
            steps=0,
            tools={},
            subagents=0,
            output_tokens=None,
            duration_s=None,
        ),
    ]


def test_think_time_runs_from_the_last_answer_and_never_below_zero() -> None:
    chat = SourceChat(
        "c",
        T0,
        messages=[
            Message(T0, "user", text_chars=1),
            Message(T0 + 4.0, "tool"),  # a tool message ends the turn too
            Message(T0 + 3.0, "user", text_chars=2),  # clocks of two writers disagree
            Message(T0 + 5.0, "assistant"),
        ],
    )
    first, second = turns_of(chat)
    assert first.duration_s == 4.0
    assert first.steps == 0
    assert second.think_s == 0.0
    assert second.duration_s == 2.0


def test_messages_before_the_first_user_message_are_no_turn() -> None:
    chat = SourceChat("c", T0, messages=[Message(T0 + 1, "assistant", output_tokens=5)])
    assert turns_of(chat) == []


def test_a_trace_of_parents_children_and_workspaces() -> None:
    parent = agent_chat()
    child = SourceChat(
        "chat-2",
        T0 + 2.0,
        parent="chat-1",
        workspace="ws-A",
        messages=[Message(T0 + 2.0, "user", text_chars=300), Message(T0 + 5.0, "assistant")],
    )
    other = SourceChat(
        "chat-3",
        T0 + 60.0,
        workspace="ws-B",
        messages=[Message(T0 + 60.0, "user", text_chars=5)],
    )
    lone = SourceChat("chat-4", T0 + 70.0, messages=[Message(T0 + 70.0, "user", text_chars=5)])
    orphan = SourceChat("chat-5", T0 + 80.0, parent="gone", messages=[Message(T0 + 80, "user")])
    empty = SourceChat("chat-6", T0 + 90.0)
    since = datetime(2026, 12, 8, 8, 59, tzinfo=UTC)
    until = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
    built = build_trace(
        [other, child, parent, lone, orphan, empty],
        source="test",
        salt=SALT,
        since=since,
        until=until,
    )
    trace = built.trace.parsed()
    assert (built.orphans, built.without_turns) == (1, 1)
    assert [c.chat for c in trace.chats] == [
        opaque(SALT, "chat-1"),
        opaque(SALT, "chat-2"),
        opaque(SALT, "chat-3"),
        opaque(SALT, "chat-4"),
    ]
    assert [c.start_s for c in trace.chats] == [60.0, 62.0, 120.0, 130.0]
    assert [c.parent for c in trace.chats] == [None, opaque(SALT, "chat-1"), None, None]
    assert [c.workspace for c in trace.chats] == [0, 0, 1, None]
    assert trace.header.started_at == since
    assert trace.header.duration_s == 3660.0
    assert trace.header.chats == 4
    # What is written reads back as the same trace: it passes every check across lines.
    assert read_trace_bytes(encode(built.trace)) == trace
    assert encode(built.trace) == encode(trace)


def test_without_a_window_the_trace_starts_at_its_first_chat() -> None:
    trace = build_trace([agent_chat()], source="t", salt=SALT).trace.parsed()
    assert trace.header.started_at == datetime.fromtimestamp(T0, UTC)
    assert trace.chats[0].start_s == 0.0
    assert trace.header.duration_s == 0.0


def test_the_hash_is_keyed_stable_and_never_the_id() -> None:
    assert opaque(SALT, "chat-1") == opaque(SALT, "chat-1")
    assert opaque(SALT, "chat-1") != opaque(b"other", "chat-1")
    assert opaque(SALT, "chat-1") != opaque(SALT, "chat-2")
    assert len(opaque(SALT, "chat-1")) == 16
    assert "chat-1" not in opaque(SALT, "chat-1")


def test_build_leaves_the_callers_chats_as_they_were() -> None:
    chat = agent_chat()
    build_trace([chat], source="t", salt=SALT)
    assert len(chat.messages) == 8
