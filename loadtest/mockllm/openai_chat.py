"""OpenAI Chat Completions (``POST /v1/chat/completions``): Coder's ``openai-compat`` provider.

Stream: a role chunk, one ``chat.completion.chunk`` per token (a tool call instead comes
whole in one chunk with the role, as Coder's llmmock sends it), a chunk with
``finish_reason``, with ``stream_options.include_usage`` a last chunk of empty ``choices``
carrying ``usage`` (and ``"usage": null`` on every other chunk, as OpenAI does), then
``data: [DONE]``.
"""

from __future__ import annotations

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

API = "chat_completions"


def _calls(messages: list[dict[str, Any]]) -> dict[Any, Any]:
    """Call id -> tool name, over the assistant messages' ``tool_calls``."""
    calls = {}
    for message in messages:
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                calls[call.get("id")] = call["function"].get("name")
    return calls


def read(body: Any) -> Prompt:
    body = obj(body, "the request body")
    messages = items(body.get("messages"), "messages")
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    options = body.get("stream_options")
    user_text = text_of(messages[last_user].get("content")) if last_user >= 0 else ""
    # Coder's llmmock counts the ``tool`` messages after the last ``user`` one
    # (scaletest/llmmock/openai_toolcalls.go ``needsOpenAIToolCall``).
    later = messages[last_user + 1 :]
    found = [(m.get("tool_call_id"), m.get("content")) for m in later if m.get("role") == "tool"]
    return Prompt(
        model=model_of(body),
        stream=body.get("stream") is True,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        input_tokens=max(1, sum(words(m) for m in messages)),
        control=find_control(user_text),
        prompted=last_user >= 0,
        results=results(found, _calls(messages)),
        tools=tool_names(items(body.get("tools") or [], "tools")),
    )


def _usage(plan: Plan, prompt: Prompt) -> dict[str, Any]:
    out = len(plan.pieces)
    return {
        "prompt_tokens": prompt.input_tokens,
        "completion_tokens": out,
        "total_tokens": prompt.input_tokens + out,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def stream(plan: Plan, prompt: Prompt, created: int) -> sse.Stream:
    base: dict[str, Any] = {
        "id": f"chatcmpl-{plan.uid}",
        "object": "chat.completion.chunk",
        "created": created,
        "model": prompt.model,
        "system_fingerprint": None,
    }
    if prompt.include_usage:
        base["usage"] = None

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse.data({**base, "choices": [choice]})

    if plan.tool is None:
        yield chunk({"role": "assistant", "content": ""})
        for piece in plan.pieces:
            yield chunk({"content": piece})
    else:
        # As Coder's llmmock (scaletest/llmmock/openai_stream.go ``sendOpenAIStream``): no
        # head; the role and the whole call in one delta, then finish_reason "tool_calls".
        yield b""
        call = {"index": 0, "id": f"call_{plan.uid}", "type": "function"}
        function = {"name": plan.tool, "arguments": plan.text}
        yield chunk({"role": "assistant", "tool_calls": [{**call, "function": function}]})
    tail = chunk({}, "tool_calls" if plan.tool else "stop")
    if prompt.include_usage:
        tail += sse.data({**base, "choices": [], "usage": _usage(plan, prompt)})
    yield tail + sse.DONE


def body(plan: Plan, prompt: Prompt, created: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    if plan.tool is None:
        message["content"] = plan.text
    else:
        function = {"name": plan.tool, "arguments": plan.text}
        message["tool_calls"] = [
            {"id": f"call_{plan.uid}", "type": "function", "function": function}
        ]
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": "tool_calls" if plan.tool else "stop",
    }
    return {
        "id": f"chatcmpl-{plan.uid}",
        "object": "chat.completion",
        "created": created,
        "model": prompt.model,
        "choices": [choice],
        "usage": _usage(plan, prompt),
        "system_fingerprint": None,
    }
