"""The mock's app driven in-process (ASGI): the three APIs through their own SDKs, auth,
injected faults as each SDK's error, per-request and runtime config, counts and reset."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import orjson
import pytest
import uvicorn

from loadtest.mockllm.config import MockConfig
from loadtest.mockllm.server import CONFIG_HEADER, create_app

FAST: dict[str, Any] = {"ttft": 0, "tokens_per_s": 0, "output_tokens": 4, "seed": 1}
BASE = "http://mock/v1"


def _app(config: dict[str, Any] | None, api_key: str | None) -> Any:
    return create_app(MockConfig.model_validate({**FAST, **(config or {})}), api_key)


def _client(config: dict[str, Any] | None = None, api_key: str | None = None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=_app(config, api_key))
    return httpx.AsyncClient(transport=transport, base_url="http://mock")


def _anthropic(http: httpx.AsyncClient, api_key: str) -> anthropic.AsyncAnthropic:
    """Anthropic's SDK on the same app (it brings its own httpx fork)."""
    app = http._transport.app  # type: ignore[attr-defined]
    client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://mock")
    return anthropic.AsyncAnthropic(
        api_key=api_key, base_url="http://mock", http_client=client, max_retries=0
    )


def _run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 20))


def _chat_body(stream: bool = True) -> dict[str, Any]:
    return {"model": "m", "stream": stream, "messages": [{"role": "user", "content": "hi there"}]}


def test_chat_completions_stream_through_the_openai_sdk() -> None:
    async def scenario() -> None:
        async with _client() as http:
            sdk = openai.AsyncOpenAI(api_key="k", base_url=BASE, http_client=http, max_retries=0)
            stream = await sdk.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "hello"}],
                stream=True,
                stream_options={"include_usage": True},
            )
            chunks = [chunk async for chunk in stream]
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert len(text.split()) == 4
            assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
            counts = (await http.get("/__mock/counts")).json()
            assert counts["requests_by_api"]["chat_completions"] == 1
            assert (counts["streams_completed"], counts["output_tokens"]) == (1, 4)
            assert counts["input_tokens"] == 1 and counts["text_replies"] == 1

    _run(scenario)


def test_responses_and_messages_answer_through_their_sdks_with_and_without_v1() -> None:
    async def scenario() -> None:
        async with _client({"tool_calls_per_turn": 1}) as http:
            oa = openai.AsyncOpenAI(api_key="k", base_url=BASE, http_client=http, max_retries=0)
            tool = {"type": "function", "name": "execute", "parameters": {}}
            reply = await oa.responses.create(model="m", input="run it", tools=[tool])  # type: ignore[list-item]
            assert reply.output[0].type == "function_call"
            an = _anthropic(http, "k")
            message = await an.messages.create(
                model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
            )
            assert message.content[0].type == "text" and message.stop_reason == "end_turn"
            plain = await http.post("/chat/completions", json=_chat_body(stream=False))
            assert plain.status_code == 200 and plain.json()["object"] == "chat.completion"
            counts = (await http.get("/__mock/counts")).json()
            assert counts["tool_calls"]["execute"] == 1 and counts["text_replies"] == 2

    _run(scenario)


def test_a_required_key_is_checked_as_bearer_or_x_api_key() -> None:
    async def scenario() -> None:
        async with _client(api_key="sekret") as http:
            wrong = openai.AsyncOpenAI(api_key="no", base_url=BASE, http_client=http, max_retries=0)
            with pytest.raises(openai.AuthenticationError):
                await wrong.chat.completions.create(model="m", messages=[])
            anth = _anthropic(http, "no")
            with pytest.raises(anthropic.AuthenticationError):
                await anth.messages.create(model="m", max_tokens=1, messages=[])
            ok = await http.post(
                "/v1/chat/completions", json=_chat_body(False), headers={"x-api-key": "sekret"}
            )
            assert ok.status_code == 200
            bearer = {"authorization": "Bearer sekret"}
            assert (await http.get("/v1/models", headers=bearer)).status_code == 200
            denied = await http.get("/v1/models", headers={"anthropic-version": "2023-06-01"})
            assert denied.status_code == 401 and denied.json()["type"] == "error"
            assert "sekret" not in denied.text

    _run(scenario)


def test_a_rate_limit_fault_is_a_429_with_retry_after_and_is_counted() -> None:
    async def scenario() -> None:
        async with _client({"fault_rate_limit": 1.0, "retry_after_s": 1.5}) as http:
            reply = await http.post("/v1/chat/completions", json=_chat_body())
            assert reply.status_code == 429
            assert (reply.headers["retry-after"], reply.headers["retry-after-ms"]) == ("2", "1500")
            assert reply.json()["error"]["code"] == "rate_limit_exceeded"
            sdk = openai.AsyncOpenAI(api_key="k", base_url=BASE, http_client=http, max_retries=0)
            with pytest.raises(openai.RateLimitError):
                await sdk.chat.completions.create(model="m", messages=[])
            counts = (await http.get("/__mock/counts")).json()
            assert counts["faults"]["rate_limit"] == 2 and counts["streams_completed"] == 0

    _run(scenario)


def test_a_cut_breaks_the_stream_before_its_end() -> None:
    # A cut is the connection closing mid-body: only a real server shows it (uvicorn on
    # 127.0.0.1, an ephemeral port).
    async def scenario() -> None:
        app = _app({"fault_cut": 1.0, "output_tokens": 8}, None)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off")
        )
        task = asyncio.create_task(server.serve())
        try:
            while not server.started:
                await asyncio.sleep(0.01)
            port = server.servers[0].sockets[0].getsockname()[1]
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                body = b""
                with pytest.raises(httpx.RemoteProtocolError):
                    async with http.stream("POST", "/v1/chat/completions", json=_chat_body()) as r:
                        async for chunk in r.aiter_bytes():
                            body += chunk
                assert body.startswith(b"data: ") and b"[DONE]" not in body
                counts = (await http.get("/__mock/counts")).json()
                assert counts["faults"]["cut"] == 1 and counts["streams_completed"] == 0
                assert counts["output_tokens"] < 8
        finally:
            server.should_exit = True
            await task

    _run(scenario)


def test_a_config_header_tunes_one_request_and_a_bad_one_is_a_400() -> None:
    async def scenario() -> None:
        async with _client() as http:
            header = {CONFIG_HEADER: orjson.dumps({"output_tokens": 2}).decode()}
            one = await http.post("/v1/chat/completions", json=_chat_body(False), headers=header)
            assert one.json()["usage"]["completion_tokens"] == 2
            two = await http.post("/v1/chat/completions", json=_chat_body(False))
            assert two.json()["usage"]["completion_tokens"] == 4
            bad = {CONFIG_HEADER: '{"output_tokens": 0}'}
            refused = await http.post("/v1/messages", json=_chat_body(False), headers=bad)
            assert refused.status_code == 400 and "output_tokens" in refused.text
            assert refused.json()["type"] == "error"  # Anthropic's shape on its path
            garbled = await http.post("/v1/responses", content=b"{nope")
            assert garbled.status_code == 400
            assert garbled.json()["error"]["type"] == "invalid_request_error"

    _run(scenario)


def test_patching_the_running_config_and_its_errors() -> None:
    async def scenario() -> None:
        async with _client() as http:
            patched = await http.patch("/__mock/config", json={"output_tokens": 9, "seed": None})
            assert patched.status_code == 200
            assert patched.json()["output_tokens"] == 9 and patched.json()["seed"] is None
            assert (await http.get("/__mock/config")).json()["output_tokens"] == 9
            invalid = await http.patch("/__mock/config", json={"output_tokens": -1})
            assert invalid.status_code == 422
            assert invalid.json()["detail"][0]["field"] == "output_tokens"
            garbled = await http.patch("/__mock/config", content=b"{")
            assert garbled.status_code == 400 and "invalid JSON" in garbled.json()["error"]
            not_object = await http.patch("/__mock/config", json=[1])
            assert not_object.status_code == 422
            assert (await http.get("/__mock/config")).json()["output_tokens"] == 9  # kept

    _run(scenario)


def test_models_list_in_both_shapes_and_unknown_routes_are_openai_404s() -> None:
    async def scenario() -> None:
        async with _client({"models": ["a", "b"]}) as http:
            models = (await http.get("/v1/models")).json()
            assert [m["id"] for m in models["data"]] == ["a", "b"]
            assert (models["first_id"], models["last_id"], models["has_more"]) == ("a", "b", False)
            missing = await http.get("/v1/nope")
            assert (
                missing.status_code == 404 and "GET /v1/nope" in missing.json()["error"]["message"]
            )
            wrong_method = await http.get("/v1/chat/completions")
            assert wrong_method.status_code == 405

    _run(scenario)


def test_reset_zeroes_the_counts_and_replays_the_seeded_requests() -> None:
    async def scenario() -> None:
        async with _client({"seed": 7}) as http:
            first = (await http.post("/v1/chat/completions", json=_chat_body(False))).json()
            reset = await http.post("/__mock/reset")
            assert reset.json()["requests"] == 0
            again = (await http.post("/v1/chat/completions", json=_chat_body(False))).json()
            assert again["choices"] == first["choices"]  # the k-th request replays
            assert (await http.get("/__mock/counts")).json()["requests"] == 1

    _run(scenario)
