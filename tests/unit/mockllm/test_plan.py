"""A turn's steps as the planner picks them: Coder's llmmock rule for tool calls, then our
sub-agents, read from each API's request shape; and the counts of what was sent."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from loadtest.mockllm import anthropic_messages, openai_chat, openai_responses
from loadtest.mockllm.config import MockConfig
from loadtest.mockllm.control import Control, find_control
from loadtest.mockllm.counts import LlmCounts
from loadtest.mockllm.faults import Fault
from loadtest.mockllm.plan import Call, Stuck, chat_id_of, make_plan, next_call, request_rng
from loadtest.mockllm.prompt import Prompt, PromptToolResult

ALL_TOOLS = frozenset({"execute", "spawn_agent", "wait_agent", "read_file"})


def _prompt(
    results: tuple[PromptToolResult, ...] = (),
    tools: frozenset[str] = ALL_TOOLS,
    control: Control | None = None,
    prompted: bool = True,
) -> Prompt:
    return Prompt("m", True, False, 3, control, prompted, results, tools)


def _executes(n: int) -> tuple[PromptToolResult, ...]:
    return (PromptToolResult("execute", "scaletest"),) * n


# Coder's own cases (scaletest/llmmock/openai_toolcalls_internal_test.go TestBuildOpenAIChoice)


def test_text_only_without_tool_calls() -> None:
    assert next_call(MockConfig(), _prompt()) is None


def test_no_user_message_returns_text() -> None:
    assert next_call(MockConfig(tool_calls_per_turn=1), _prompt(prompted=False)) is None


@pytest.mark.parametrize("done", [0, 1])
def test_calls_execute_while_fewer_results_than_asked(done: int) -> None:
    config = MockConfig(tool_calls_per_turn=2, tool_call_command="echo scaletest")
    assert next_call(config, _prompt(_executes(done))) == Call(
        "execute", '{"command":"echo scaletest"}'
    )


def test_stops_after_all_tool_calls() -> None:
    assert next_call(MockConfig(tool_calls_per_turn=2), _prompt(_executes(2))) is None


def test_falls_back_to_text_when_execute_is_not_offered() -> None:
    config = MockConfig(tool_calls_per_turn=1)
    assert next_call(config, _prompt(tools=frozenset({"read_file"}))) is None


def test_counts_every_tool_result_as_coder_does() -> None:
    # Coder counts the tool messages after the last user message, whatever their tool.
    other = (PromptToolResult("", "?"),)
    assert next_call(MockConfig(tool_calls_per_turn=1), _prompt(other)) is None


# The control block, key by key


def test_control_block_overrides_key_by_key() -> None:
    config = MockConfig(tool_calls_per_turn=2, tool_call_command="ls", subagents_per_turn=1)
    # Asking for no calls wins over the server's two: the turn goes straight to sub-agents.
    step = next_call(config, _prompt(control=Control(0)))
    assert isinstance(step, Call) and step.tool == "spawn_agent"
    # A block about sub-agents only keeps the server's tool calls and command.
    call = next_call(config, _prompt(control=Control(subagents_this_turn=0)))
    assert call == Call("execute", '{"command":"ls"}')
    call = next_call(config, _prompt(control=Control(command="pwd", tool="read_file")))
    assert call == Call("read_file", '{"command":"pwd"}')


# Sub-agents (our extension)


def _run_turn(config: MockConfig, control: Control | None = None) -> list[Call]:
    """Play a turn as a client would: each call answered, spawn_agent with a child chat_id."""
    results: list[PromptToolResult] = []
    calls: list[Call] = []
    for _ in range(50):
        step = next_call(config, _prompt(tuple(results), control=control))
        if step is None:
            return calls
        assert isinstance(step, Call), step
        calls.append(step)
        if step.tool == "spawn_agent":
            child = f"child-{len(calls)}"
            text = json.dumps({"chat_id": child, "title": "t", "status": "running"})
        else:
            text = "report"
        results.append(PromptToolResult(step.tool, text))
    raise AssertionError("the turn never ended")


def test_turn_runs_tool_calls_then_spawn_wait_pairs_then_text() -> None:
    calls = _run_turn(MockConfig(tool_calls_per_turn=2, subagents_per_turn=2))
    assert [c.tool for c in calls] == [
        "execute",
        "execute",
        "spawn_agent",
        "wait_agent",
        "spawn_agent",
        "wait_agent",
    ]
    # Each wait names the child its spawn's result gave.
    assert orjson.loads(calls[3].arguments) == {"chat_id": "child-3"}
    assert orjson.loads(calls[5].arguments) == {"chat_id": "child-5"}
    spawn = orjson.loads(calls[2].arguments)
    assert (spawn["type"], spawn["title"]) == ("general", "mock sub-agent 1")


def test_spawn_prompt_shapes_the_child_turn() -> None:
    calls = _run_turn(MockConfig(), Control(subagents_this_turn=1, subagent_tool_calls=3))
    assert [c.tool for c in calls] == ["spawn_agent", "wait_agent"]
    prompt = orjson.loads(calls[0].arguments)["prompt"]
    # The child spawns nothing (depth 1, as Coder) and makes the calls asked for.
    assert find_control(prompt) == Control(tool_calls_this_turn=3, subagents_this_turn=0)
    # Without subagent_tool_calls the child keeps the server's tool calls.
    calls = _run_turn(MockConfig(subagents_per_turn=1))
    assert find_control(orjson.loads(calls[0].arguments)["prompt"]) == Control(
        subagents_this_turn=0
    )


def test_child_turn_follows_its_prompt() -> None:
    parent = _run_turn(MockConfig(tool_calls_per_turn=1, subagents_per_turn=1))
    child_prompt = orjson.loads(parent[1].arguments)["prompt"]
    control = find_control(child_prompt)
    # Even offered spawn_agent, a child whose prompt says 0 sub-agents spawns none.
    calls = _run_turn(MockConfig(tool_calls_per_turn=1, subagents_per_turn=1), control)
    assert [c.tool for c in calls] == ["execute"]


def test_sub_agent_tools_only_when_offered() -> None:
    config = MockConfig(subagents_per_turn=2)
    assert next_call(config, _prompt(tools=frozenset({"execute"}))) is None
    # spawn_agent offered but not wait_agent: spawns go on, unwaited.
    spawned = (PromptToolResult("spawn_agent", '{"chat_id":"a"}'),)
    no_wait = frozenset({"spawn_agent"})
    step = next_call(config, _prompt(spawned, tools=no_wait))
    assert isinstance(step, Call) and step.tool == "spawn_agent"
    assert next_call(config, _prompt(spawned * 2, tools=no_wait)) is None


def test_spawn_result_without_chat_id_ends_the_turn_in_text() -> None:
    config = MockConfig(subagents_per_turn=1)
    failed = (PromptToolResult("spawn_agent", "subagent limit reached"),)
    step = next_call(config, _prompt(failed))
    assert isinstance(step, Stuck) and "no chat_id" in step.reason
    plan = make_plan(config, _prompt(failed), random.Random(0))
    assert plan.tool is None and plan.stuck == step.reason and plan.text == step.reason


@pytest.mark.parametrize(
    ("result", "chat_id"),
    [
        ('{"chat_id":"3f2a","title":"x","status":"running","type":"general"}', "3f2a"),
        ('Result: {"chat_id": "3f2a"}', "3f2a"),
        ('{"output":"{\\"chat_id\\":\\"3f2a\\"}"}', "3f2a"),
        ('{"chat_id": ""}', None),
        ("error: no workspace", None),
    ],
)
def test_chat_id_of(result: str, chat_id: str | None) -> None:
    assert chat_id_of(result) == chat_id


# The same turn in each API's request shape


def _chat_turn(spawn_result: str) -> dict[str, Any]:
    def call(call_id: str, name: str) -> dict[str, Any]:
        function = {"name": name, "arguments": "{}"}
        return {"id": call_id, "type": "function", "function": function}

    return {
        "model": "m",
        "tools": [{"type": "function", "function": {"name": n}} for n in sorted(ALL_TOOLS)],
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "tool_calls": [call("c1", "execute")]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
            {"role": "assistant", "tool_calls": [call("c2", "spawn_agent")]},
            {
                "role": "tool",
                "tool_call_id": "c2",
                "content": [{"type": "text", "text": spawn_result}],
            },
        ],
    }


def _responses_turn(spawn_result: str) -> dict[str, Any]:
    def call(call_id: str, name: str) -> dict[str, Any]:
        return {"type": "function_call", "call_id": call_id, "name": name, "arguments": "{}"}

    return {
        "model": "m",
        "tools": [{"type": "function", "name": n} for n in sorted(ALL_TOOLS)],
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "go"}]},
            call("c1", "execute"),
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
            call("c2", "spawn_agent"),
            {"type": "function_call_output", "call_id": "c2", "output": spawn_result},
        ],
    }


def _messages_turn(spawn_result: str) -> dict[str, Any]:
    def call(call_id: str, name: str) -> dict[str, Any]:
        block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
        return {"role": "assistant", "content": [block]}

    def result(call_id: str, content: Any) -> dict[str, Any]:
        block = {"type": "tool_result", "tool_use_id": call_id, "content": content}
        return {"role": "user", "content": [block]}

    return {
        "model": "m",
        "tools": [{"name": n, "input_schema": {}} for n in sorted(ALL_TOOLS)],
        "messages": [
            {"role": "user", "content": "go"},
            call("c1", "execute"),
            result("c1", "ok"),
            call("c2", "spawn_agent"),
            result("c2", [{"type": "text", "text": spawn_result}]),
        ],
    }


TURNS: list[tuple[Any, Callable[[str], dict[str, Any]]]] = [
    (openai_chat, _chat_turn),
    (openai_responses, _responses_turn),
    (anthropic_messages, _messages_turn),
]


@pytest.mark.parametrize(("dialect", "turn"), TURNS)
def test_each_api_names_its_results_by_their_calls(
    dialect: Any, turn: Callable[[str], dict[str, Any]]
) -> None:
    prompt = dialect.read(turn('{"chat_id":"kid"}'))
    assert prompt.results == (
        PromptToolResult("execute", "ok"),
        PromptToolResult("spawn_agent", '{"chat_id":"kid"}'),
    )
    config = MockConfig(tool_calls_per_turn=1, subagents_per_turn=1)
    assert next_call(config, prompt) == Call("wait_agent", '{"chat_id":"kid"}')


# Counts


def test_counts_replies_by_kind_and_tool() -> None:
    counts = LlmCounts()
    for tool in ("execute", "execute", "spawn_agent", "wait_agent", "my_tool"):
        counts.completed(tool, None)
    counts.completed(None, None)
    counts.completed(None, "no chat_id")
    out = counts.as_json()
    assert out["tool_calls"] == {"execute": 2, "spawn_agent": 1, "wait_agent": 1, "my_tool": 1}
    assert (out["text_replies"], out["wait_agent_without_chat_id"]) == (2, 1)
    assert out["streams_completed"] == 7
    assert LlmCounts().as_json()["tool_calls"] == {"execute": 0, "spawn_agent": 0, "wait_agent": 0}


def test_plans_replay_from_the_seed() -> None:
    config = MockConfig(ttft="uniform:0,1", fault_cut=0.5, output_tokens=20)
    plans = [make_plan(config, _prompt(), request_rng(42, n)) for n in range(10)]
    assert plans == [make_plan(config, _prompt(), request_rng(42, n)) for n in range(10)]
    assert len({p.uid for p in plans}) == 10
    assert {p.fault for p in plans} == {None, Fault.CUT}
    assert all(len(p.pieces) == 20 and 0 <= p.break_after < 20 for p in plans)
    assert all(len(p.text.split()) == 20 for p in plans)


def test_tool_plan_sends_its_arguments_whole() -> None:
    # Coder's llmmock sends the whole call in one delta (scaletest/llmmock/openai_stream.go).
    plan = make_plan(MockConfig(tool_calls_per_turn=1), _prompt(), random.Random(0))
    assert plan.tool == "execute" and len(plan.pieces) == 1
    assert orjson.loads(plan.text) == {"command": "echo scaletest"}
