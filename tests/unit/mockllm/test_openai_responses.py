"""OpenAI Responses: reading a request, and the numbered events of a reply."""

from __future__ import annotations

import random
from typing import Any

import orjson

from loadtest.mockllm import openai_responses
from loadtest.mockllm.config import MockConfig
from loadtest.mockllm.plan import make_plan
from tests.unit.mockllm.prompts import read_prompt


def test_responses_events_are_numbered_in_order() -> None:
    plan = make_plan(MockConfig(output_tokens=4), read_prompt(), random.Random(3))
    stream = b"".join(openai_responses.stream(plan, read_prompt(), 0)).decode()
    datas = [
        line.removeprefix("data: ") for line in stream.splitlines() if line.startswith("data:")
    ]
    assert [orjson.loads(d)["sequence_number"] for d in datas] == list(range(len(datas)))


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


def _events(parts: list[bytes]) -> list[dict[str, Any]]:
    text = b"".join(parts).decode()
    lines = [line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data:")]
    return [orjson.loads(line) for line in lines]


def test_a_text_stream_rebuilds_the_text_and_completes() -> None:
    plan = make_plan(MockConfig(output_tokens=4), read_prompt(), random.Random(3))
    events = _events(list(openai_responses.stream(plan, read_prompt(), 0)))
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert "".join(deltas) == plan.text
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["status"] == "completed"


def test_a_tool_call_streams_its_arguments() -> None:
    plan = make_plan(MockConfig(tool_calls_per_turn=1), read_prompt(), random.Random(3))
    events = _events(list(openai_responses.stream(plan, read_prompt(), 0)))
    (done,) = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert orjson.loads(done["arguments"]) == {"command": "echo scaletest"}
    body = openai_responses.body(plan, read_prompt(), 0)
    assert body["output"][0]["type"] == "function_call" and body["output"][0]["name"] == "execute"


def test_results_are_named_by_their_function_call() -> None:
    prompt = openai_responses.read(
        {
            "model": "m",
            "stream": True,
            "input": [
                {"role": "user", "content": "go"},
                {"type": "function_call", "call_id": "c", "name": "spawn_agent"},
                {"type": "function_call_output", "call_id": "c", "output": '{"chat_id":"x"}'},
            ],
        }
    )
    assert prompt.stream and prompt.results[0].tool == "spawn_agent" and prompt.prompted
