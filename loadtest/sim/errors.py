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

# Coder's exact strings (protocol section 8.1, from the chat handlers): (message, detail).
ARCHIVED_POST = "Cannot send messages to an archived chat."
MODEL_NOT_FOUND = "Invalid model_config_id: model config not found or disabled."
QUEUE_FULL = ("Message queue is full.", "Maximum {limit} messages can be queued.")
CONTENT_REQUIRED = ("Content is required.", "Content cannot be empty.")
BUSY_BEHAVIOR = ("Invalid busy_behavior value.", 'Must be "queue" or "interrupt".')
NO_ORG_MODEL = (
    "No chat model is available in this organization.",
    "Ask an organization administrator to configure and enable a chat model.",
)
ARCHIVE_ACTIVE = "Cannot archive an active chat. Interrupt or wait for the chat to finish first."
ALREADY_ARCHIVED = "Chat is already archived."
ALREADY_UNARCHIVED = "Chat is already not archived."
TITLE_EMPTY = "Title cannot be empty."
TITLE_TOO_LONG = "Title must be at most 200 characters."
NOT_INTERRUPTIBLE = "Chat is not in an interruptible state."
INTERRUPT_ARCHIVED = "Cannot interrupt an archived chat."
NOTHING_TO_PROMOTE = "Chat has no queued messages to promote."
PROMOTE_ARCHIVED = "Cannot promote queued messages in an archived chat."
BAD_AFTER_ID = "Invalid after_id parameter."


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
