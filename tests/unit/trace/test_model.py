"""A trace's lines: strict models (a typo or a string number is an error), lines written as
``Trace`` writes them, and the checks across lines naming the line and key."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from loadtest.trace.model import (
    ChatLine,
    Problem,
    Trace,
    TraceChat,
    TraceHeader,
    TraceLines,
    TraceTurn,
    check_chats,
    turns_json,
)

TURN = TraceTurn(
    think_s=1.5, prompt_chars=40, steps=2, tools={"execute": 2, "read_file": 1}, subagents=0,
    output_tokens=120, duration_s=3.0,
)  # fmt: skip


def header(chats: int, duration_s: float = 60.0) -> TraceHeader:
    return TraceHeader(
        schema_version=1,
        source="test",
        started_at=datetime(2026, 5, 1, tzinfo=UTC),
        duration_s=duration_s,
        chats=chats,
    )


def chat(name: str, start_s: float = 0.0, parent: str | None = None) -> TraceChat:
    return TraceChat(chat=name, start_s=start_s, parent=parent, workspace=None, turns=[TURN])


def test_a_turn_counts_its_tool_calls() -> None:
    assert TURN.tool_calls() == 3


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"steps": "2"}, "steps"),
        ({"think_s": -1}, "think_s"),
        ({"tool": {}}, "tool"),
        ({"tools": {"execute": -1}}, "tools.execute"),
    ],
)
def test_a_turn_is_strict(change: dict[str, object], key: str) -> None:
    data = {**TURN.model_dump(), **change}
    with pytest.raises(ValidationError, match=key):
        TraceTurn.model_validate(data)


def test_lines_written_as_chat_lines_are_the_bytes_a_read_trace_writes() -> None:
    chats = [chat("a"), chat("b", 2.0, parent="a")]
    lines = TraceLines(
        header(2),
        [
            ChatLine(c.chat, c.start_s, c.parent, c.workspace, turns_json(c.turns), len(c.turns))
            for c in chats
        ],
    )
    trace = Trace(header(2), chats)
    assert list(lines.encoded()) == list(trace.encoded())
    assert lines.parsed().chats == chats
    assert list(trace.turns()) == [TURN, TURN]


@pytest.mark.parametrize(
    ("chats", "problem"),
    [
        ([chat("a"), chat("a")], Problem(3, "chat", "'a' is already line 2")),
        ([chat("a", 61.0)], Problem(2, "start_s", "61 is after the trace's end (header duration_s 60)")),
        ([chat("a", parent="z")], Problem(2, "parent", "'z' is not a chat in this file")),
        (
            [chat("a"), chat("b", parent="a"), chat("c", parent="b")],
            Problem(4, "parent", "'b' is itself a sub-agent (line 3); Coder's sub-agents cannot spawn their own"),
        ),
        (
            [chat("a", 5.0), chat("b", 1.0, parent="a")],
            Problem(3, "start_s", "1 is before its parent's start (5, line 2)"),
        ),
    ],
)  # fmt: skip
def test_the_first_problem_across_lines_names_its_line_and_key(
    chats: list[TraceChat], problem: Problem
) -> None:
    assert check_chats(header(len(chats)), chats) == problem


def test_a_file_cut_short_is_caught_by_the_headers_count() -> None:
    found = check_chats(header(3), [chat("a")])
    assert found is not None and (found.line, found.key) == (3, "chats")
    assert "was it cut short?" in found.message
    assert check_chats(header(1), [chat("a")]) is None
