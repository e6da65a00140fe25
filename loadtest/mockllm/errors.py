"""Error bodies in each provider's shape, so each SDK raises its own error class."""

from __future__ import annotations

from typing import Any, Final

#: kind -> (OpenAI error type, OpenAI code, Anthropic error type)
_KINDS: Final = {
    "rate_limit": ("requests", "rate_limit_exceeded", "rate_limit_error"),
    "http_500": ("server_error", None, "api_error"),
    "http_502": ("server_error", "bad_gateway", "api_error"),
    "http_503": ("server_error", "service_unavailable", "api_error"),
    "overloaded": ("server_error", "overloaded", "overloaded_error"),
    "unauthorized": ("invalid_request_error", "invalid_api_key", "authentication_error"),
    "invalid_request": ("invalid_request_error", None, "invalid_request_error"),
    "not_found": ("invalid_request_error", "not_found", "not_found_error"),
}


def openai_error(kind: str, message: str) -> dict[str, Any]:
    error_type, code, _ = _KINDS[kind]
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def anthropic_error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": _KINDS[kind][2], "message": message}}
