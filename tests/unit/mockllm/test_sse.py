"""The dialects' streams as sse.py describes them: a head, one item per token, a tail."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from loadtest.mockllm import anthropic_messages, openai_chat, openai_responses, sse
from loadtest.mockllm.config import MockConfig
from loadtest.mockllm.plan import make_plan
from tests.unit.mockllm.prompts import read_prompt

DIALECTS = [openai_chat, openai_responses, anthropic_messages]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("tools", [0, 1])
def test_streams_have_a_head_a_unit_per_token_and_a_tail(dialect: Any, tools: int) -> None:
    config = MockConfig(output_tokens=6, tool_calls_per_turn=tools)
    plan = make_plan(config, read_prompt(), random.Random(3))
    parts = list(dialect.stream(plan, read_prompt(), 1_700_000_000))
    assert len(parts) == len(plan.pieces) + 2
    assert all(part.endswith(b"\n\n") for part in parts[1:])
    # Chat Completions sends a tool call's role with the call (no head), as Coder's llmmock.
    assert parts[0] == b"" if dialect is openai_chat and tools else parts[0].endswith(b"\n\n")
    body = dialect.body(plan, read_prompt(), 1_700_000_000)
    assert orjson.loads(orjson.dumps(body)) == body


def test_events_are_framed_as_the_sdks_expect() -> None:
    assert sse.data({"a": 1}) == b'data: {"a":1}\n\n'
    assert sse.event("ping", {"type": "ping"}) == b'event: ping\ndata: {"type":"ping"}\n\n'
    assert sse.DONE == b"data: [DONE]\n\n"
