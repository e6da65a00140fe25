"""Anthropic Messages: reading a request, and the events and body of a reply."""

from __future__ import annotations

import random
from typing import Any

import orjson

from loadtest.mockllm import anthropic_messages
from loadtest.mockllm.config import MockConfig
from loadtest.mockllm.plan import make_plan
from tests.unit.mockllm.prompts import read_prompt


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


def _events(parts: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in b"".join(parts).decode().split("\n\n"):
        if block:
            name, data = block.split("\n")
            out.append((name.removeprefix("event: "), orjson.loads(data.removeprefix("data: "))))
    return out


def test_a_text_stream_names_each_event_and_rebuilds_the_text() -> None:
    plan = make_plan(MockConfig(output_tokens=4), read_prompt(), random.Random(5))
    events = _events(list(anthropic_messages.stream(plan, read_prompt(), 0)))
    assert all(name == data["type"] for name, data in events)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert text == plan.text
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] == "end_turn" and delta["usage"]["output_tokens"] == 4


def test_a_tool_use_streams_json_that_parses_to_its_input() -> None:
    plan = make_plan(MockConfig(tool_calls_per_turn=1), read_prompt(), random.Random(5))
    events = _events(list(anthropic_messages.stream(plan, read_prompt(), 0)))
    partial = "".join(d["delta"]["partial_json"] for n, d in events if n == "content_block_delta")
    assert orjson.loads(partial) == {"command": "echo scaletest"}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    block = anthropic_messages.body(plan, read_prompt(), 0)["content"][0]
    assert block["type"] == "tool_use" and block["input"] == {"command": "echo scaletest"}


def test_system_words_count_as_input() -> None:
    prompt = anthropic_messages.read(
        {"model": "m", "system": "a b c", "messages": [{"role": "user", "content": "d"}]}
    )
    assert prompt.input_tokens == 4 and prompt.results == ()
