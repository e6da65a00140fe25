"""The mock LLM's pure core, without a server: config, control block, planner, dialects.

(Pure tests; they would sit in ``tests/unit`` but live here with the mock's other tests.)
"""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from loadtest.config import Distribution, merge_patch, patched
from loadtest.mockllm import anthropic_messages, openai_chat, openai_responses
from loadtest.mockllm.config import MockConfig
from loadtest.mockllm.control import Control, find_control
from loadtest.mockllm.faults import Fault, pick_fault
from loadtest.mockllm.plan import make_plan, request_rng
from loadtest.mockllm.prompt import Prompt, ToolResult

DIALECTS = [openai_chat, openai_responses, anthropic_messages]


def _prompt(**fields: Any) -> Prompt:
    values: dict[str, Any] = {
        "model": "m",
        "stream": True,
        "include_usage": True,
        "input_tokens": 3,
        "control": None,
        "prompted": True,
        "results": (),
        "tools": frozenset({"execute"}),
    }
    return Prompt(**(values | fields))


@pytest.mark.parametrize(
    ("spec", "dist", "fields"),
    [
        ("0.2", "constant", {"value": 0.2}),
        (0.3, "constant", {"value": 0.3}),
        ("constant:1", "constant", {"value": 1.0}),
        ("uniform:0.1, 0.5", "uniform", {"min": 0.1, "max": 0.5}),
        ("lognormal:0.3,0.6", "lognormal", {"p50": 0.3, "sigma": 0.6}),
        ("lognormal:0.3", "lognormal", {"p50": 0.3, "sigma": 0.5}),
    ],
)
def test_ttft_shorthand(spec: Any, dist: str, fields: dict[str, float]) -> None:
    ttft = Distribution.model_validate(spec)
    assert ttft.dist == dist
    assert {name: getattr(ttft, name) for name in fields} == fields
    assert Distribution.model_validate(str(ttft)) == ttft


@pytest.mark.parametrize("spec", ["gamma:1,2", "uniform:1", "uniform:0.5,0.1", "x", "-1"])
def test_ttft_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(ValidationError):
        MockConfig.model_validate({"ttft": spec})


def test_ttft_samples_stay_in_their_distribution() -> None:
    rng = random.Random(1)
    uniform = Distribution.model_validate("uniform:0.1,0.2")
    assert all(0.1 <= uniform.sample(rng) <= 0.2 for _ in range(200))
    lognormal = [Distribution.model_validate("lognormal:0.5,0.4").sample(rng) for _ in range(2001)]
    assert sorted(lognormal)[1000] == pytest.approx(0.5, rel=0.1)
    assert Distribution.model_validate("0.7").sample(rng) == 0.7


def test_merge_patch_follows_rfc_7386() -> None:
    target = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1]}
    patch = {"a": None, "b": {"c": 4}, "e": [2], "f": "x"}
    assert merge_patch(target, patch) == {"b": {"c": 4, "d": 3}, "e": [2], "f": "x"}
    assert merge_patch(target, "replaced") == "replaced"


def test_patched_config() -> None:
    base = MockConfig(output_tokens=5, fault_cut=0.5)
    changed = patched(base, {"fault_cut": None, "ttft": {"dist": "uniform", "max": 2}})
    assert (changed.output_tokens, changed.fault_cut) == (5, 0.0)
    assert (changed.ttft.dist, changed.ttft.max) == ("uniform", 2.0)
    with pytest.raises(ValidationError, match="tokens_per_minute"):
        patched(base, {"tokens_per_minute": 1})
    with pytest.raises(ValidationError, match=r"add up to 1\.1"):
        patched(base, {"fault_500": 0.6})
    with pytest.raises(ValueError, match="JSON object"):
        patched(base, [1])


def test_pick_fault_walks_the_cumulative_probabilities() -> None:
    odds = {Fault.RATE_LIMIT: 0.1, Fault.CUT: 0.2}
    assert pick_fault(odds, 0.05) is Fault.RATE_LIMIT
    assert pick_fault(odds, 0.15) is Fault.CUT
    assert pick_fault(odds, 0.29) is Fault.CUT
    assert pick_fault(odds, 0.31) is None
    assert pick_fault({}, 0.0) is None


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


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("tools", [0, 1])
def test_streams_have_a_head_a_unit_per_token_and_a_tail(dialect: Any, tools: int) -> None:
    config = MockConfig(output_tokens=6, tool_calls_per_turn=tools)
    plan = make_plan(config, _prompt(), random.Random(3))
    parts = list(dialect.stream(plan, _prompt(), 1_700_000_000))
    assert len(parts) == len(plan.pieces) + 2
    assert all(part.endswith(b"\n\n") for part in parts[1:])
    # Chat Completions sends a tool call's role with the call (no head), as Coder's llmmock.
    assert parts[0] == b"" if dialect is openai_chat and tools else parts[0].endswith(b"\n\n")
    body = dialect.body(plan, _prompt(), 1_700_000_000)
    assert orjson.loads(orjson.dumps(body)) == body


def test_responses_events_are_numbered_in_order() -> None:
    plan = make_plan(MockConfig(output_tokens=4), _prompt(), random.Random(3))
    stream = b"".join(openai_responses.stream(plan, _prompt(), 0)).decode()
    datas = [
        line.removeprefix("data: ") for line in stream.splitlines() if line.startswith("data:")
    ]
    assert [orjson.loads(d)["sequence_number"] for d in datas] == list(range(len(datas)))


def test_read_chat() -> None:
    prompt = openai_chat.read(
        {
            "model": "m",
            "stream": True,
            "stream_options": {"include_usage": True},
            "tools": [{"type": "function", "function": {"name": "execute"}}],
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "first turn"}]},
                {"role": "assistant", "content": "ok"},
                {
                    "role": "user",
                    "content": "<coder-scaletest-control>{}</coder-scaletest-control>",
                },
                {"role": "assistant", "tool_calls": []},
                {"role": "tool", "content": "done"},
            ],
        }
    )
    assert (prompt.stream, prompt.include_usage, prompt.tools) == (True, True, {"execute"})
    assert (prompt.input_tokens, prompt.tool_results, prompt.prompted) == (7, 1, True)
    assert prompt.results == (ToolResult("", "done"),)
    assert prompt.control == Control()


def test_read_responses() -> None:
    prompt = openai_responses.read(
        {
            "model": "m",
            "instructions": "be nice",
            "tools": [{"type": "function", "name": "execute"}],
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "do it"}]},
                {"type": "function_call", "call_id": "c", "name": "execute", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c", "output": "fine"},
            ],
        }
    )
    assert (prompt.stream, prompt.input_tokens, prompt.tool_results) == (False, 5, 1)
    assert openai_responses.read({"model": "m", "input": "a b"}).input_tokens == 2


def test_read_messages_tool_results_are_not_prompts() -> None:
    prompt = anthropic_messages.read(
        {
            "model": "m",
            "system": [{"type": "text", "text": "sys"}],
            "tools": [{"name": "execute", "input_schema": {}}],
            "messages": [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]},
            ],
        }
    )
    assert (prompt.tool_results, prompt.input_tokens, prompt.tools) == (1, 2, {"execute"})


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "body",
    [[], {"messages": [], "input": []}, {"model": "m", "messages": "x", "input": 3}],
)
def test_reads_reject_malformed_bodies(dialect: Any, body: Any) -> None:
    with pytest.raises(ValueError):
        dialect.read(body)
