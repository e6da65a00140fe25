"""The Starlette adapter: routes, auth, the admin endpoints, and the pacing that plays a plan.

Everything a reply says comes from the pure dialect builders; this module only decides when
to send it, and breaks it off when the plan says so. A cut is made by returning without ending
the body: uvicorn then closes the connection, which the client sees as a truncated stream.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Final, Protocol

import anyio
import orjson
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from loadtest.config import patched
from loadtest.mockllm import anthropic_messages, openai_chat, openai_responses, sse
from loadtest.mockllm.config import MockConfig
from loadtest.mockllm.counts import LlmCounts
from loadtest.mockllm.errors import openai_error
from loadtest.mockllm.faults import Fault
from loadtest.mockllm.plan import Plan, make_plan, request_rng
from loadtest.mockllm.prompt import Prompt

#: Per-request tuning: a JSON merge patch over the running config.
CONFIG_HEADER: Final = "X-Mock-LLM-Config"

_SSE_HEADERS: Final = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]
#: Faults that break a started reply (silence, cut) rather than answer with a status.
_BREAKS: Final = frozenset(fault for fault in Fault if fault.status is None)
#: What uvicorn logs when an app returns mid-body; for us that is an intended cut.
_CUT_LOG: Final = "ASGI callable returned without completing response."


class Dialect(Protocol):
    """One wire API; the modules ``openai_chat``, ``openai_responses`` and
    ``anthropic_messages`` implement it."""

    API: str

    def read(self, body: Any) -> Prompt: ...
    def stream(self, plan: Plan, prompt: Prompt, created: int) -> sse.Stream: ...
    def body(self, plan: Plan, prompt: Prompt, created: int) -> dict[str, Any]: ...
    def error(self, kind: str, message: str) -> dict[str, Any]: ...


DIALECTS: Final[dict[str, Dialect]] = {
    "/chat/completions": openai_chat,
    "/responses": openai_responses,
    "/messages": anthropic_messages,
}


class MockState:
    """The running config, the counts, and the request numbering the planner seeds from."""

    def __init__(self, config: MockConfig, api_key: str | None) -> None:
        self.config = config
        self.api_key = api_key
        self.counts = LlmCounts()
        self.numbers = itertools.count()

    def reset(self) -> None:
        self.counts = LlmCounts()
        self.numbers = itertools.count()

    def authorized(self, request: Request) -> bool:
        """Any key passes unless one is required; then a bearer token or ``x-api-key``."""
        if self.api_key is None:
            return True
        expected = self.api_key.encode()
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        offered = [request.headers.get("x-api-key", "")]
        if scheme.lower() == "bearer":
            offered.append(token.strip())
        return any(hmac.compare_digest(key.encode(), expected) for key in offered)


class _Playback(Response):
    """A response written by a coroutine as it goes, dropped as soon as the client leaves."""

    def __init__(self, play: Callable[[Send], Awaitable[None]]) -> None:
        self._play = play

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def watch() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    group.cancel_scope.cancel()

                group.start_soon(watch)
                await self._play(send)
                group.cancel_scope.cancel()
        except asyncio.CancelledError:
            # Only uvicorn cancels us, when its graceful-shutdown timeout ends: the reply is
            # cut like any other (uvicorn closes the connection), not worth a traceback each.
            return


class _QuietCuts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _CUT_LOG


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status, headers, media_type="application/json")


async def _body(send: Send, chunk: bytes, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": chunk, "more_body": more})


async def _sleep_until(due: float) -> None:
    delay = due - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)


async def _break(plan: Plan, counts: LlmCounts) -> None:
    """Break a started reply: stay silent first if that is the fault, then return unfinished."""
    assert plan.fault is not None
    counts.faults[plan.fault] += 1
    if plan.fault is Fault.SILENCE:
        await asyncio.sleep(plan.silence_s)


async def _play_stream(send: Send, plan: Plan, script: sse.Stream, counts: LlmCounts) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
    if head := next(script):
        await _body(send, head)
    first_due = asyncio.get_running_loop().time() + plan.ttft_s
    stop = plan.break_after if plan.fault in _BREAKS else -1
    for i in range(len(plan.pieces)):
        if i == stop:
            return await _break(plan, counts)
        await _sleep_until(first_due + i * plan.interval_s)
        await _body(send, next(script))
        counts.output_tokens += 1
    await _body(send, next(script), more=False)
    counts.completed(plan.tool, plan.stuck)


async def _play_body(send: Send, plan: Plan, payload: bytes, counts: LlmCounts) -> None:
    """A non-streaming reply: sent whole once generated; a break sends half of it first."""
    await asyncio.sleep(plan.ttft_s + plan.interval_s * (len(plan.pieces) - 1))
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if plan.fault in _BREAKS:
        await _body(send, payload[: len(payload) // 2])
        return await _break(plan, counts)
    await _body(send, payload, more=False)
    counts.output_tokens += len(plan.pieces)
    counts.completed(plan.tool, plan.stuck)


def _fault_response(dialect: Dialect, fault: Fault, config: MockConfig) -> Response:
    headers = {}
    if fault is Fault.RATE_LIMIT:
        headers["retry-after"] = str(math.ceil(config.retry_after_s))
        headers["retry-after-ms"] = str(round(config.retry_after_s * 1000))
    payload = dialect.error(fault.value, f"mock-llm: injected {fault.value} fault")
    assert fault.status is not None
    return _json(payload, fault.status, headers)


async def _complete(dialect: Dialect, state: MockState, request: Request) -> Response:
    counts = state.counts
    counts.request(dialect.API)
    if not state.authorized(request):
        return _json(dialect.error("unauthorized", "invalid API key"), 401)
    try:
        config = state.config
        if (patch := request.headers.get(CONFIG_HEADER)) is not None:
            config = patched(config, orjson.loads(patch))
        prompt = dialect.read(orjson.loads(await request.body()))
    except (orjson.JSONDecodeError, ValueError) as exc:  # pydantic's ValidationError included
        return _json(dialect.error("invalid_request", str(exc)), 400)
    plan = make_plan(config, prompt, request_rng(config.seed, next(state.numbers)))
    if plan.fault is not None and plan.fault.status is not None:
        counts.faults[plan.fault] += 1
        return _fault_response(dialect, plan.fault, config)
    counts.input_tokens += prompt.input_tokens
    created = int(time.time())
    if prompt.stream:
        script = dialect.stream(plan, prompt, created)
        return _Playback(lambda send: _play_stream(send, plan, script, counts))
    payload = orjson.dumps(dialect.body(plan, prompt, created))
    return _Playback(lambda send: _play_body(send, plan, payload, counts))


async def _models(state: MockState, request: Request) -> Response:
    state.counts.request("models")
    if not state.authorized(request):
        kind = "unauthorized"
        if "anthropic-version" in request.headers:
            return _json(anthropic_messages.error(kind, "invalid API key"), 401)
        return _json(openai_error(kind, "invalid API key"), 401)
    # One list in both shapes: OpenAI's (object, created, owned_by) and Anthropic's
    # (type, display_name, created_at, has_more, first_id, last_id).
    models = [
        {
            "id": model,
            "object": "model",
            "created": 0,
            "owned_by": "chatload",
            "type": "model",
            "display_name": model,
            "created_at": "1970-01-01T00:00:00Z",
        }
        for model in state.config.models
    ]
    page = {"has_more": False, "first_id": models[0]["id"], "last_id": models[-1]["id"]}
    return _json({"object": "list", "data": models, **page})


async def _counts(state: MockState, request: Request) -> Response:
    return _json(state.counts.as_json())


async def _reset(state: MockState, request: Request) -> Response:
    state.reset()
    return _json(state.counts.as_json())


async def _config(state: MockState, request: Request) -> Response:
    if request.method == "PATCH":
        try:
            state.config = patched(state.config, orjson.loads(await request.body()))
        except orjson.JSONDecodeError as exc:
            return _json({"error": f"invalid JSON: {exc}"}, 400)
        except ValidationError as exc:
            detail = [
                {"field": ".".join(map(str, e["loc"])), "message": e["msg"]}
                for e in exc.errors(include_url=False)
            ]
            return _json({"error": "invalid config", "detail": detail}, 422)
        except ValueError as exc:
            return _json({"error": str(exc)}, 422)
    return _json(state.config.model_dump(mode="json"))


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    return _json(
        openai_error("not_found", f"no route for {request.method} {request.url.path}"), status
    )


Handler = Callable[[MockState, Request], Awaitable[Response]]


def _bind(state: MockState, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await handler(state, request)

    return endpoint


def create_app(config: MockConfig, api_key: str | None = None) -> Starlette:
    """The mock as an ASGI app. Paths are served with and without ``/v1``: Coder appends
    them to whatever base URL an admin configured."""
    uvicorn_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietCuts) for f in uvicorn_log.filters):
        uvicorn_log.addFilter(_QuietCuts())
    state = MockState(config, api_key)
    routes = [
        Route("/__mock/counts", _bind(state, _counts), methods=["GET"]),
        Route("/__mock/reset", _bind(state, _reset), methods=["POST"]),
        Route("/__mock/config", _bind(state, _config), methods=["GET", "PATCH"]),
    ]
    for prefix in ("/v1", ""):
        routes.append(Route(f"{prefix}/models", _bind(state, _models), methods=["GET"]))
        for path, dialect in DIALECTS.items():
            routes.append(
                Route(prefix + path, _bind(state, partial(_complete, dialect)), methods=["POST"])
            )
    handlers = {404: _not_found, 405: _not_found}
    return Starlette(routes=routes, exception_handlers=handlers)
