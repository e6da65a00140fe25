"""HTTP plumbing shared by the route modules: orjson responses and Coder's body rules."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from loadtest.sim.errors import INVALID_JSON, ApiError, invalid_uuid


class JSON(Response):
    """A JSON response rendered with orjson: every Coder answer is JSON."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(error: ApiError) -> Response:
    if error.plain:
        return PlainTextResponse(error.message + "\n", error.status, headers=error.headers)
    return JSON(error.body(), status_code=error.status, headers=error.headers)


async def read_body(request: Request) -> dict[str, Any]:
    """The JSON object a handler was sent; Coder's 400 for anything else."""
    raw = await request.body()
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, INVALID_JSON, "EOF" if not raw else str(exc)) from None
    if not isinstance(value, dict):
        detail = f"json: cannot unmarshal {type(value).__name__} into Go value of type struct"
        raise ApiError(400, INVALID_JSON, detail)
    return value


M = TypeVar("M", bound=BaseModel)


async def read_request(request: Request, model: type[M]) -> M:
    """The body as the protocol's request ``model`` (the client builds it from the same one)."""
    return parse_request(await read_body(request), model)


def parse_request(body: dict[str, Any], model: type[M]) -> M:
    """``body`` as ``model``; a field of the wrong type is Coder's 400, as Go's JSON decoder
    answers it (its detail names the field; the wording is ours)."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        # Go says: json: cannot unmarshal string into Go struct field X.content of type [...]
        detail = f"json: cannot unmarshal into Go struct field {model.__name__}.{field}"
        raise ApiError(400, INVALID_JSON, detail) from None


def parse_uuid(raw: str) -> str:
    """A ``{chat}``-style path parameter, canonicalised; Coder's 400 if it is no UUID."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise invalid_uuid(raw) from None
