"""One streamed Chat Completions call to a real LLM, against a scripted transport: the
request chatd makes, what the stream yields, and each way it fails classified as Coder does."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from loadtest.sim.llm import PROVIDER, LLMError, retry_after_s, stream_chat

KEY = "sk-secret-llm-key-0123"


def sse(*chunks: dict[str, Any] | str) -> bytes:
    lines = [c if isinstance(c, str) else orjson.dumps(c).decode() for c in chunks]
    return "".join(f"data: {line}\n\n" for line in lines).encode()


def collect(
    handler: Callable[[httpx.Request], httpx.Response], tools: list[dict[str, Any]] | None = None
) -> list[tuple[str, Any]]:
    async def scenario() -> list[tuple[str, Any]]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            stream = stream_chat(
                client, "http://llm/v1/", KEY, "gpt-x", [{"role": "user", "content": "hi"}], tools
            )
            return [item async for item in stream]

    return asyncio.run(scenario())


def test_the_request_is_chatds_streaming_call_and_the_reply_yields_text_tools_and_usage() -> None:
    seen: list[httpx.Request] = []
    call = {"index": 0, "id": "call_1", "function": {"name": "execute", "arguments": "{}"}}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = sse(
            {"choices": [{"delta": {"content": "hel"}}]},
            {"choices": [{"delta": {"content": ""}}]},
            {"choices": [{"delta": {"content": "lo", "tool_calls": [call]}}]},
            {"choices": [], "usage": {"completion_tokens": 3}},
            "[DONE]",
            {"choices": [{"delta": {"content": "after done"}}]},
        )
        return httpx.Response(200, content=b": comment\n\n" + body)

    tools = [{"type": "function", "function": {"name": "execute"}}]
    assert collect(handler, tools) == [
        ("text", "hel"),
        ("text", "lo"),
        ("tool", call),
        ("usage", {"completion_tokens": 3}),
    ]
    (request,) = seen
    assert str(request.url) == "http://llm/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    body = orjson.loads(request.content)
    assert body["model"] == "gpt-x" and body["stream"] is True and body["tools"] == tools
    assert body["stream_options"] == {"include_usage": True}


def test_no_tools_means_no_tools_key() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(orjson.loads(request.content))
        return httpx.Response(200, content=sse("[DONE]"))

    assert collect(handler) == []
    assert "tools" not in seen[0]


@pytest.mark.parametrize(
    ("status", "headers", "retryable", "wait"),
    [
        (429, {"retry-after": "7"}, True, 7.0),
        (503, {"retry-after-ms": "1500"}, True, 1.5),
        (400, {}, False, 0.0),
        (401, {}, False, 0.0),
    ],
)
def test_an_http_error_is_classified_by_its_status_with_the_providers_wait(
    status: int, headers: dict[str, str], retryable: bool, wait: float
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, text="upstream says no")

    with pytest.raises(LLMError) as failed:
        collect(handler)
    failure = failed.value.failure
    assert (failure.status_code, failure.retryable, failure.retry_after_s) == (
        status,
        retryable,
        wait,
    )
    assert failure.provider == PROVIDER and "upstream says no" in failure.detail
    assert KEY not in failure.detail and KEY not in str(failed.value)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (sse({"choices": [{"delta": {"content": "cut"}}]}), "before [DONE]"),
        (b"data: {not json\n\n", ""),
    ],
)
def test_a_stream_cut_short_or_garbled_is_a_retryable_generic_error(body: bytes, says: str) -> None:
    with pytest.raises(LLMError) as failed:
        collect(lambda request: httpx.Response(200, content=body))
    assert failed.value.failure.retryable and failed.value.failure.kind == "generic"
    assert says in failed.value.failure.detail


def test_a_connection_that_fails_is_a_retryable_generic_error_without_the_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(LLMError) as failed:
        collect(handler)
    assert failed.value.failure.retryable and KEY not in failed.value.failure.detail


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}, 0.0),
        ({"retry-after": "-3"}, 0.0),
        ({}, 0.0),
    ],
)
def test_retry_after_prefers_milliseconds_and_ignores_what_it_cannot_read(
    headers: dict[str, str], wait: float
) -> None:
    assert retry_after_s(httpx.Headers(headers)) == wait
