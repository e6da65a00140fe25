"""OpenAI Responses (``POST /v1/responses``): what Coder's ``openai`` provider uses for models
that support it.

Stream (named events, numbered by ``sequence_number``): ``response.created``,
``response.in_progress``; with the first token ``response.output_item.added`` (and for text
``response.content_part.added``); per token ``response.output_text.delta`` or
``response.function_call_arguments.delta``; then the matching ``.done`` events,
``response.output_item.done`` and ``response.completed``, which carries ``usage``.
"""

from __future__ import annotations

import itertools
from typing import Any

from loadtest.mockllm import sse
from loadtest.mockllm.control import find_control
from loadtest.mockllm.errors import openai_error as error
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

API = "responses"


def read(body: Any) -> Prompt:
    body = obj(body, "the request body")
    raw = body.get("input")
    inputs = [{"role": "user", "content": raw}] if isinstance(raw, str) else items(raw, "input")
    is_user = [i.get("role") == "user" and i.get("type", "message") == "message" for i in inputs]
    last_user = max((i for i, user in enumerate(is_user) if user), default=-1)
    later = inputs[last_user + 1 :]
    user_text = text_of(inputs[last_user].get("content")) if last_user >= 0 else ""
    calls = {i.get("call_id"): i.get("name") for i in inputs if i.get("type") == "function_call"}
    outputs = [i for i in later if i.get("type") == "function_call_output"]
    return Prompt(
        model=model_of(body),
        stream=body.get("stream") is True,
        include_usage=False,
        input_tokens=max(1, words(body.get("instructions")) + sum(words(i) for i in inputs)),
        control=find_control(user_text),
        prompted=last_user >= 0,
        results=results(((i.get("call_id"), i.get("output")) for i in outputs), calls),
        tools=tool_names(items(body.get("tools") or [], "tools")),
    )


def _usage(plan: Plan, prompt: Prompt) -> dict[str, Any]:
    out = len(plan.pieces)
    return {
        "input_tokens": prompt.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt.input_tokens + out,
    }


def _item(plan: Plan, done: bool) -> dict[str, Any]:
    """The reply's one output item: a message, or a function call."""
    status = "completed" if done else "in_progress"
    if plan.tool is not None:
        return {
            "type": "function_call",
            "id": f"fc_{plan.uid}",
            "call_id": f"call_{plan.uid}",
            "name": plan.tool,
            "arguments": plan.text if done else "",
            "status": status,
        }
    content = [_part(plan.text)] if done else []
    message = {"type": "message", "id": f"msg_{plan.uid}", "role": "assistant"}
    return {**message, "status": status, "content": content}


def _part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _response(plan: Plan, prompt: Prompt, created: int, done: bool) -> dict[str, Any]:
    return {
        "id": f"resp_{plan.uid}",
        "object": "response",
        "created_at": created,
        "status": "completed" if done else "in_progress",
        "completed_at": created if done else None,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": prompt.model,
        "output": [_item(plan, done=True)] if done else [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": _usage(plan, prompt) if done else None,
        "user": None,
        "metadata": {},
    }


def stream(plan: Plan, prompt: Prompt, created: int) -> sse.Stream:
    numbers = itertools.count()

    def ev(kind: str, **fields: Any) -> bytes:
        return sse.event(kind, {"type": kind, "sequence_number": next(numbers), **fields})

    where = {"item_id": _item(plan, done=False)["id"], "output_index": 0}
    text_at = {**where, "content_index": 0}
    yield ev("response.created", response=_response(plan, prompt, created, done=False)) + ev(
        "response.in_progress", response=_response(plan, prompt, created, done=False)
    )
    for i, piece in enumerate(plan.pieces):
        first = b""
        if i == 0:
            first = ev("response.output_item.added", output_index=0, item=_item(plan, done=False))
            if plan.tool is None:
                first += ev("response.content_part.added", **text_at, part=_part(""))
        if plan.tool is None:
            yield first + ev("response.output_text.delta", **text_at, delta=piece, logprobs=[])
        else:
            yield first + ev("response.function_call_arguments.delta", **where, delta=piece)
    if plan.tool is None:
        tail = ev("response.output_text.done", **text_at, text=plan.text, logprobs=[])
        tail += ev("response.content_part.done", **text_at, part=_part(plan.text))
    else:
        tail = ev("response.function_call_arguments.done", **where, arguments=plan.text)
    tail += ev("response.output_item.done", output_index=0, item=_item(plan, done=True))
    yield tail + ev("response.completed", response=_response(plan, prompt, created, done=True))


def body(plan: Plan, prompt: Prompt, created: int) -> dict[str, Any]:
    return _response(plan, prompt, created, done=True)
