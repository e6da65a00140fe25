"""The in-prompt control block: every key, absent keys, and the errors that name the key."""

from __future__ import annotations

import pytest

from loadtest.mockllm.control import Control, find_control, render


def _block(body: str) -> str:
    return f"<coder-scaletest-control>{body}</coder-scaletest-control>\nRun it."


def test_every_key() -> None:
    text = _block(
        '{"v":1,"tool_calls_this_turn":2,"tool":"execute","command":"ls",'
        '"subagents_this_turn":1,"subagent_tool_calls":3}'
    )
    assert find_control(text) == Control(
        tool_calls_this_turn=2,
        tool="execute",
        command="ls",
        subagents_this_turn=1,
        subagent_tool_calls=3,
    )


def test_absent_keys_say_nothing() -> None:
    # None leaves the server's setting: a block asking only for sub-agents keeps the
    # server's tool calls.
    assert find_control(_block("{}")) == Control()
    assert find_control(_block('{"subagents_this_turn":2}')) == Control(subagents_this_turn=2)
    assert find_control("no block") is None


def test_the_block_may_sit_anywhere_in_the_prompt() -> None:
    assert find_control("Please: " + _block('{"tool_calls_this_turn":0}')) == Control(0)


def test_render_writes_what_find_control_reads() -> None:
    text = render(subagents_this_turn=0, tool_calls_this_turn=4) + "\nMock task."
    assert text.startswith('<coder-scaletest-control>{"v":1,')
    assert find_control(text) == Control(tool_calls_this_turn=4, subagents_this_turn=0)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ('{"subagent_this_turn":1}', "'subagent_this_turn'"),
        ('{"subagents_this_turn":-1}', "subagents_this_turn"),
        ('{"subagents_this_turn":"2"}', "subagents_this_turn"),
        ('{"subagent_tool_calls":1.5}', "subagent_tool_calls"),
        ('{"tool_calls_this_turn":false}', "tool_calls_this_turn"),
        ('{"tool":""}', "tool"),
        ('{"command":7}', "command"),
        ('{"v":2}', "v must be 1"),
    ],
)
def test_bad_values_name_their_key(body: str, named: str) -> None:
    with pytest.raises(ValueError, match="control block") as caught:
        find_control(_block(body))
    assert named in str(caught.value)


def test_find_control() -> None:
    assert find_control("no block here") is None
    text = '<coder-scaletest-control>{"v":1,"tool_calls_this_turn":2}</coder-scaletest-control>\nhi'
    assert find_control(text) == Control(2)
    custom = '<coder-scaletest-control>{"tool_calls_this_turn":1,"tool":"t","command":"c"}'
    assert find_control(custom + "</coder-scaletest-control>") == Control(1, "t", "c")


@pytest.mark.parametrize(
    "block",
    [
        "<coder-scaletest-control>{}",
        "<coder-scaletest-control>{bad</coder-scaletest-control>",
        "<coder-scaletest-control>[1]</coder-scaletest-control>",
        '<coder-scaletest-control>{"v":2}</coder-scaletest-control>',
        '<coder-scaletest-control>{"tool_calls_this_turn":-1}</coder-scaletest-control>',
        '<coder-scaletest-control>{"tool_calls_this_turn":true}</coder-scaletest-control>',
    ],
)
def test_find_control_rejects_malformed_blocks(block: str) -> None:
    with pytest.raises(ValueError, match="control block"):
        find_control(block)
