"""Coder's per-chat pubsub message between replicas (``ChatStreamNotifyMessage``), as Go writes it.

Source: coderd/pubsub/chatstreamnotify.go (the seed ``000_9046d68aac9d09c0``): published on
``chat:stream:<chat_id>``; durable content is re-read from the database after
``after_message_id``, transient control events (``retry``, ``error_payload``) ride inline.
Every field is ``omitempty``: a zero value (0, "", false, nil) is left out of the JSON, and
the fields come in the struct's order. PostgreSQL refuses a NOTIFY payload of 8000 bytes or
more, and Coder's pubsub metrics call a message of 7600 bytes or more "colossal"
(coderd/database/pubsub/pubsub.go: ``colossalThreshold``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import orjson
from pydantic import BaseModel, ConfigDict

from loadtest.protocol.models import ChatError, ChatStreamRetry

CHANNEL_PREFIX: Final = "chat:stream:"
#: PostgreSQL's limit on a NOTIFY payload, in bytes (it must be shorter).
NOTIFY_PAYLOAD_LIMIT: Final = 8000
#: Coder's "colossal" pubsub message: 95 % of PostgreSQL's limit.
COLOSSAL_BYTES: Final = 7600


def stream_channel(chat_id: str) -> str:
    """The pubsub channel of one chat's stream (Go: ``ChatStreamNotifyChannel``)."""
    return f"{CHANNEL_PREFIX}{chat_id}"


def go_time(when: datetime) -> str:
    """RFC 3339 with the fraction's trailing zeros cut, as Go's ``time.Time`` marshals."""
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.microsecond:
        text += f".{when.microsecond:06d}".rstrip("0")
    offset = when.utcoffset()
    if offset is None or not offset:
        return text + "Z"
    return text + when.strftime("%z")[:3] + ":" + when.strftime("%z")[3:]


class ChatStreamNotifyMessage(BaseModel):
    """One notification; every field optional, as in Go."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Subscribers re-read the chat's messages after this id (set after a commit).
    after_message_id: int = 0
    #: A status change; with ``worker_id``, the replica now running the chat.
    status: str = ""
    worker_id: str = ""
    retry: ChatStreamRetry | None = None
    #: The structured error (new replicas); ``error`` is the legacy string, kept for
    #: replicas of an older version during a rolling deploy.
    error_payload: ChatError | None = None
    error: str = ""
    queue_update: bool = False
    full_refresh: bool = False

    def wire(self) -> dict[str, Any]:
        """The JSON object Go's ``encoding/json`` writes: zero values omitted."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, BaseModel):
                nested = value.model_dump(exclude_unset=True, by_alias=True)
                out[name] = {
                    k: go_time(v) if isinstance(v, datetime) else v for k, v in nested.items()
                }
            elif value:
                out[name] = value
        return out

    def encode(self) -> bytes:
        return orjson.dumps(self.wire())

    @classmethod
    def decode(cls, payload: bytes | str) -> ChatStreamNotifyMessage:
        """Parse a payload; a malformed one raises ``ValueError`` naming what is wrong."""
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"pubsub payload is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError("pubsub payload is not a JSON object")
        return cls.model_validate(data)
