"""The LLM tier: one OpenAI Chat Completions streaming call, as chatd's openai-compat
provider makes it, turned into text deltas, tool calls and usage.

An HTTP error is classified by its status as ``chaterror`` does (section 8.6), with the
provider's ``Retry-After`` kept for the retry's wait; a stream cut before ``[DONE]`` is a
retryable generic error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from loadtest.protocol.models import ErrorKind
from loadtest.sim.chaterror import failure, from_status
from loadtest.sim.events import Failure

PROVIDER = "openai-compat"


class LLMError(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def retry_after_s(headers: httpx.Headers) -> float:
    """The provider's wish: ``retry-after-ms`` (exact) or ``retry-after`` seconds."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return max(0.0, float(headers[name]) * scale)
        except (KeyError, ValueError):
            continue
    return 0.0


def _status_failure(status: int, body: str, headers: httpx.Headers) -> Failure:
    detail = f"upstream answered HTTP {status}: {body[:200]}".rstrip(": ")
    return from_status(status, PROVIDER, detail, retry_after_s(headers))


async def stream_chat(
    client: httpx.AsyncClient,
    base_url: str,
    api_key: str,
    model: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
) -> AsyncIterator[tuple[str, Any]]:
    """Yield ``("text", str)``, ``("tool", delta)`` and ``("usage", dict)``; raise LLMError.
    ``tools``: the function tools the request offers (chatd offers its agent tools)."""
    url = base_url.rstrip("/") + "/chat/completions"
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if tools:
        body["tools"] = tools
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "text/event-stream"}
    done = False
    try:
        async with client.stream("POST", url, content=orjson.dumps(body), headers=headers) as reply:
            if reply.status_code != 200:
                text = (await reply.aread()).decode(errors="replace")
                raise LLMError(_status_failure(reply.status_code, text, reply.headers))
            async for line in reply.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    break
                chunk = orjson.loads(data)
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta") or {}
                    if delta.get("content"):
                        yield "text", delta["content"]
                    for call in delta.get("tool_calls") or ():
                        yield "tool", call
                if chunk.get("usage"):
                    yield "usage", chunk["usage"]
    except httpx.HTTPError as exc:
        raise LLMError(failure(ErrorKind.GENERIC, PROVIDER, 0, repr(exc))) from exc
    except orjson.JSONDecodeError as exc:
        raise LLMError(failure(ErrorKind.GENERIC, PROVIDER, 0, str(exc))) from exc
    if not done:
        raise LLMError(failure(ErrorKind.GENERIC, PROVIDER, 0, "stream ended before [DONE]"))
