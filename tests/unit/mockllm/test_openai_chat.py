"""OpenAI Chat Completions: reading a request, and the chunks and body of a reply."""

from __future__ import annotations

import random
from typing import Any

import orjson

from loadtest.mockllm import openai_chat
from loadtest.mockllm.config import MockConfig
from loadtest.mockllm.control import Control
from loadtest.mockllm.plan import make_plan
from loadtest.mockllm.prompt import PromptToolResult
from tests.unit.mockllm.prompts import read_prompt


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
    assert prompt.results == (PromptToolResult("", "done"),)
    assert prompt.control == Control()


def _datas(parts: list[bytes]) -> list[Any]:
    text = b"".join(parts).decode()
    lines = [line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data:")]
    return [line if line == "[DONE]" else orjson.loads(line) for line in lines]


def test_a_text_stream_rebuilds_the_text_and_ends_with_usage_then_done() -> None:
    plan = make_plan(MockConfig(output_tokens=5), read_prompt(), random.Random(2))
    chunks = _datas(list(openai_chat.stream(plan, read_prompt(), 7)))
    assert chunks[-1] == "[DONE]"
    usage = chunks[-2]
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 5
    assert usage["usage"]["total_tokens"] == 5 + 3
    deltas = [c["choices"][0]["delta"] for c in chunks[:-2]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert "".join(d.get("content", "") for d in deltas) == plan.text
    assert chunks[-3]["choices"][0]["finish_reason"] == "stop"
    assert all(c["usage"] is None for c in chunks[:-2])  # as OpenAI: null until the last


def test_without_include_usage_there_is_no_usage_chunk() -> None:
    prompt = read_prompt(include_usage=False)
    plan = make_plan(MockConfig(output_tokens=2), prompt, random.Random(2))
    chunks = _datas(list(openai_chat.stream(plan, prompt, 7)))
    assert chunks[-1] == "[DONE]" and all("usage" not in c for c in chunks[:-1])


def test_a_tool_call_comes_whole_with_the_role() -> None:
    plan = make_plan(MockConfig(tool_calls_per_turn=1), read_prompt(), random.Random(2))
    chunks = _datas(list(openai_chat.stream(plan, read_prompt(), 7)))
    delta = chunks[0]["choices"][0]["delta"]
    assert delta["role"] == "assistant"
    (call,) = delta["tool_calls"]
    assert call["function"] == {"name": "execute", "arguments": '{"command":"echo scaletest"}'}
    assert chunks[1]["choices"][0]["finish_reason"] == "tool_calls"


def test_the_body_holds_the_text_or_the_call() -> None:
    text = make_plan(MockConfig(output_tokens=3), read_prompt(), random.Random(2))
    body = openai_chat.body(text, read_prompt(), 7)
    assert body["choices"][0]["message"]["content"] == text.text
    assert body["usage"]["completion_tokens"] == 3 and body["created"] == 7
    call = make_plan(MockConfig(tool_calls_per_turn=1), read_prompt(), random.Random(2))
    message = openai_chat.body(call, read_prompt(), 7)["choices"][0]["message"]
    assert message["content"] is None and message["tool_calls"][0]["function"]["name"] == "execute"


def test_only_tool_messages_after_the_last_user_message_are_this_turns_results() -> None:
    prompt = openai_chat.read(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": "one"},
                {"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "x"}}]},
                {"role": "tool", "tool_call_id": "a", "content": "old"},
                {"role": "user", "content": "two"},
                {"role": "assistant", "tool_calls": [{"id": "b", "function": {"name": "y"}}]},
                {"role": "tool", "tool_call_id": "b", "content": "new"},
            ],
        }
    )
    assert prompt.results == (PromptToolResult("y", "new"),) and not prompt.stream
