"""HTTP plumbing shared by the route modules: orjson responses and Coder's body rules."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from loadtest.sim.errors import INVALID_JSON, ApiError, invalid_uuid


class JSON(Response):
    """A JSON response rendered with orjson: every Coder answer is JSON."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(error: ApiError) -> Response:
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


def parse_uuid(raw: str) -> str:
    """A ``{chat}``-style path parameter, canonicalised; Coder's 400 if it is no UUID."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise invalid_uuid(raw) from None
