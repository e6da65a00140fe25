"""Coder's HTTP error body (``codersdk.Response``) as an exception the core raises.

The core decides *which* error Coder would answer; the HTTP adapter only renders it. Messages
are Coder's exact strings wherever the spec records them (section 1.0 and the endpoint tables).
"""

from __future__ import annotations

from typing import Any

from loadtest.protocol.models import Response, ValidationError

SIGNED_OUT = "You are signed out or your session has expired. Please sign in again to continue."
NOT_FOUND = "Resource not found or you do not have access to this resource"
ROUTE_NOT_FOUND = "Route not found."
INVALID_JSON = "Request body must be valid JSON."
VALIDATION_FAILED = "Validation failed."
FORBIDDEN = "Forbidden."

# The chat handlers' own strings are facts both sides use: loadtest/protocol/constants.py.


class ApiError(Exception):
    """An HTTP error answer: status code plus Coder's ``{message, detail, validations}``."""

    def __init__(
        self,
        status: int,
        message: str,
        detail: str | None = None,
        validations: list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        plain: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        self.validations = validations
        self.headers = headers
        #: Answered as text/plain (the message and a newline), as a few of Coder's are.
        self.plain = plain

    def body(self) -> dict[str, Any]:
        """The JSON body, with ``detail`` and ``validations`` omitted when empty."""
        response = Response(message=self.message)
        if self.detail:
            response.detail = self.detail
        if self.validations:
            response.validations = [
                ValidationError(field=field, detail=detail) for field, detail in self.validations
            ]
        return response.wire()


def not_found() -> ApiError:
    return ApiError(404, NOT_FOUND)


def forbidden() -> ApiError:
    return ApiError(403, FORBIDDEN)


def invalid_uuid(value: str) -> ApiError:
    """Coder's answer to a path parameter that is not a UUID (Go's ``uuid.Parse`` detail)."""
    detail = (
        "invalid UUID format" if len(value) in (32, 36) else f"invalid UUID length: {len(value)}"
    )
    return ApiError(400, f'Invalid UUID "{value}".', detail)
