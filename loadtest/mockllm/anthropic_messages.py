"""Anthropic Messages (``POST /v1/messages``): Coder's ``anthropic`` provider.

Stream (named events): ``message_start`` (usage with the input tokens) and ``ping``; with the
first token ``content_block_start`` (text, or tool_use with empty input); per token
``content_block_delta`` (``text_delta`` or ``input_json_delta``); then
``content_block_stop``, ``message_delta`` (stop reason and the cumulative usage) and
``message_stop``.
"""

from __future__ import annotations

from typing import Any

import orjson

from loadtest.mockllm import sse
from loadtest.mockllm.control import find_control
from loadtest.mockllm.errors import anthropic_error as error
from loadtest.mockllm.plan import Plan
from loadtest.mockllm.prompt import (
    Prompt,
    items,
    model_of,
    obj,
    results,
    text_of,
    tool_names,
    words,
)

__all__ = ["API", "body", "error", "read", "stream"]

API = "messages"


def _blocks(message: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    content = message.get("content")
    if not isinstance(content, list):
        return []
    return [b for b in content if isinstance(b, dict) and b.get("type") == kind]


def read(body: Any) -> Prompt:
    body = obj(body, "the request body")
    messages = items(body.get("messages"), "messages")
    # Tool results come back inside user messages; only a user message without any is a prompt.
    prompts = [m.get("role") == "user" and not _blocks(m, "tool_result") for m in messages]
    last_user = max((i for i, prompt in enumerate(prompts) if prompt), default=-1)
    user_text = text_of(messages[last_user].get("content")) if last_user >= 0 else ""
    calls = {b.get("id"): b.get("name") for m in messages for b in _blocks(m, "tool_use")}
    found = [
        (b.get("tool_use_id"), b.get("content"))
        for m in messages[last_user + 1 :]
        for b in _blocks(m, "tool_result")
    ]
    return Prompt(
        model=model_of(body),
        stream=body.get("stream") is True,
        include_usage=False,
        input_tokens=max(1, words(body.get("system")) + sum(words(m) for m in messages)),
        control=find_control(user_text),
        prompted=last_user >= 0,
        results=results(found, calls),
        tools=tool_names(items(body.get("tools") or [], "tools")),
    )


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def _message(
    plan: Plan, prompt: Prompt, content: list[Any], stop: str | None, out: int
) -> dict[str, Any]:
    return {
        "id": f"msg_{plan.uid}",
        "type": "message",
        "role": "assistant",
        "model": prompt.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": _usage(prompt.input_tokens, out),
    }


def _stop_reason(plan: Plan) -> str:
    return "tool_use" if plan.tool else "end_turn"


def _tool_use(plan: Plan, tool: str, arguments: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": f"toolu_{plan.uid}", "name": tool, "input": arguments}


def stream(plan: Plan, prompt: Prompt, created: int) -> sse.Stream:
    del created  # Anthropic's messages carry no timestamp
    start = _message(plan, prompt, [], None, 0)
    yield sse.event("message_start", {"type": "message_start", "message": start}) + sse.event(
        "ping", {"type": "ping"}
    )
    for i, piece in enumerate(plan.pieces):
        first = b""
        if i == 0:
            block = (
                {"type": "text", "text": ""}
                if plan.tool is None
                else _tool_use(plan, plan.tool, {})
            )
            first = sse.event(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": block},
            )
        if plan.tool is None:
            delta = {"type": "text_delta", "text": piece}
        else:
            delta = {"type": "input_json_delta", "partial_json": piece}
        yield first + sse.event(
            "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
        )
    message_delta = {
        "type": "message_delta",
        "delta": {"stop_reason": _stop_reason(plan), "stop_sequence": None},
        "usage": _usage(prompt.input_tokens, len(plan.pieces)),
    }
    yield (
        sse.event("content_block_stop", {"type": "content_block_stop", "index": 0})
        + sse.event("message_delta", message_delta)
        + sse.event("message_stop", {"type": "message_stop"})
    )


def body(plan: Plan, prompt: Prompt, created: int) -> dict[str, Any]:
    del created
    if plan.tool is None:
        block = {"type": "text", "text": plan.text}
    else:
        block = _tool_use(plan, plan.tool, orjson.loads(plan.text))
    return _message(plan, prompt, [block], _stop_reason(plan), len(plan.pieces))
