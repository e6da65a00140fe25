"""A trace as a replay plan: users' chats only, a window shifted to its start, a share per
process that covers each chat once, and prompts of the recorded size and shape."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loadtest.mockllm.control import find_control
from loadtest.trace.model import Trace, TraceChat, TraceHeader, TraceTurn
from loadtest.trace.replay import Window, plan, prompt


def turn(**kw: object) -> TraceTurn:
    fields: dict[str, object] = {
        "think_s": 1.0,
        "prompt_chars": 40,
        "steps": 1,
        "tools": {},
        "subagents": 0,
        "output_tokens": None,
        "duration_s": 2.0,
    }
    return TraceTurn.model_validate({**fields, **kw})


def chat(name: str, start: float, parent: str | None = None) -> TraceChat:
    return TraceChat(chat=name, start_s=start, parent=parent, workspace=None, turns=[turn()])


def trace(*chats: TraceChat, duration: float = 100.0) -> Trace:
    header = TraceHeader(
        schema_version=1,
        source="test",
        started_at=datetime(2026, 12, 1, tzinfo=UTC),
        duration_s=duration,
        chats=len(chats),
    )
    return Trace(header, list(chats))


def test_only_users_chats_are_planned_in_start_order() -> None:
    planned = plan(
        trace(chat("b", 5.0), chat("a", 1.0), chat("child", 6.0, parent="b")),
        "t.jsonl",
        1.0,
        Window(),
        loop=False,
    )
    assert [c.chat for c in planned.chats] == ["a", "b"]  # the sub-agent is the server's
    assert planned.span_s == 100.0 and planned.turns == 2


def test_a_window_keeps_its_chats_and_shifts_them_to_its_start() -> None:
    planned = plan(
        trace(chat("early", 10.0), chat("in", 65.0), chat("late", 130.0), duration=200.0),
        "t.jsonl",
        2.0,
        Window.parse("60:120"),
        loop=False,
    )
    assert [(c.chat, c.start_s) for c in planned.chats] == [("in", 5.0)]
    assert planned.span_s == 60.0


def test_each_process_takes_a_disjoint_share_and_together_every_chat() -> None:
    planned = plan(trace(*(chat(f"c{i}", float(i)) for i in range(10))), "t", 1.0, Window(), False)
    shares = [planned.mine(slot, 3) for slot in range(3)]
    names = [c.chat for share in shares for c in share]
    assert sorted(names) == sorted(f"c{i}" for i in range(10)) and len(set(names)) == 10


@pytest.mark.parametrize("text", ["60", "a:b", "120:60", "5:5"])
def test_a_bad_window_is_a_clear_error(text: str) -> None:
    with pytest.raises(ValueError, match="--window"):
        Window.parse(text)


def test_a_prompt_has_the_recorded_size_and_asks_for_the_recorded_shape() -> None:
    plain = prompt(turn(prompt_chars=123))
    assert len(plain) == 123 and find_control(plain) is None
    agent = turn(prompt_chars=50, tools={"execute": 2, "read_file": 1}, subagents=1)
    text = prompt(agent)
    control = find_control(text)
    assert control is not None
    assert control.tool_calls_this_turn == 3 and control.tool == "execute"
    assert len(text.split("</coder-scaletest-control>")[1]) == 50
    assert '"subagents_this_turn":1' in text
