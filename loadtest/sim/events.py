"""Stream events and frames as each era sends them, built from the protocol models.

Only ``text_part`` is built by hand: it is the event a turn sends hundreds of times, and a
pydantic round trip per delta would cost more than the rest of the server. Its shape is
pinned to the model-built form by a test.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import orjson

from loadtest.protocol.eras import PATHS, Era
from loadtest.protocol.events import (
    ERROR,
    HISTORY_RESET,
    MESSAGE,
    MESSAGE_PART,
    PREVIEW_RESET,
    QUEUE_UPDATE,
    RETRY,
    STATUS,
)
from loadtest.protocol.models import (
    ChatError,
    ChatMessage,
    ChatMessagePart,
    ChatQueuedMessage,
    ChatStreamEvent,
    ChatStreamMessagePart,
    ChatStreamRetry,
    ChatStreamStatus,
)

Event = dict[str, Any]

#: The type of a ``mark``: never sent, only counted by the stream that passes it.
MARK: Final = "mark:"
#: Never sent either: the frame being written ends here, so what follows starts a new one.
FRAME_BREAK: Final = "frame:break"


def mark(name: str) -> Event:
    """A note in the event stream that one integrity break (a figure of ``docs/metrics.md``'s
    integrity section) is now visible to a client: each stream counts the marks it passes,
    so the simulator's counts are per delivery, as the client's are."""
    return {"type": MARK + name}


class Failure:
    """A provider error as Coder's ``chaterror`` classifies it."""

    __slots__ = (
        "detail",
        "kind",
        "message",
        "provider",
        "retry_after_s",
        "retry_text",
        "retryable",
        "status_code",
    )

    def __init__(
        self,
        kind: str,
        message: str,
        status_code: int,
        retryable: bool,
        provider: str,
        detail: str,
        retry_after_s: float = 0.0,
    ) -> None:
        self.kind = kind
        self.message = message
        self.status_code = status_code
        self.retryable = retryable
        self.provider = provider
        self.detail = detail
        #: The provider's ``Retry-After``: the retry waits at least this long.
        self.retry_after_s = retry_after_s
        #: What a ``retry`` event says of it (``chaterror.retry_message``).
        self.retry_text = message

    def chat_error(self, *, detail: bool = True) -> ChatError:
        """The May 2026 ``ChatError`` (era d's stream error and ``last_error``); without
        ``detail`` it is the March form. Empty fields are omitted as Go's omitempty does."""
        error = ChatError(message=self.message, retryable=self.retryable)
        if detail and self.detail:
            error.detail = self.detail
        if self.kind:
            error.kind = self.kind
        if self.provider:
            error.provider = self.provider
        if self.status_code:
            error.status_code = self.status_code
        return error


class Episode:
    """A chat's versions, as chatd keeps them on its row (coderd/x/chatd/ARCHITECTURE.md,
    "Message revisions and history version"): ``snapshot`` rises once per transaction;
    ``history`` takes the transaction's snapshot whenever message history changes (so it
    may skip numbers) and sends ``attempt`` back to 0; ``RecordGenerationAttempt`` raises
    ``attempt`` before every LLM call (or tool batch), so an episode's first attempt is 1.
    ``queue`` and ``retry`` are the snapshots of the last queue and retry-state changes; ``seq``
    numbers the parts of the episode (``history``, ``attempt``) from 1."""

    __slots__ = ("attempt", "history", "queue", "retry", "seq", "snapshot")

    def __init__(self) -> None:
        self.snapshot = 0
        self.history = 0
        self.attempt = 0
        self.queue = 0
        self.retry = 0
        self.seq = 0

    def transaction(self) -> None:
        """A transaction began: it advances ``snapshot`` before it changes anything."""
        self.snapshot += 1

    def history_changed(self) -> None:
        """A message was inserted or rewritten (the trigger: once per transaction)."""
        self.history = self.snapshot
        self.attempt = 0
        self.seq = 0

    def attempt_recorded(self) -> None:
        self.attempt += 1
        self.seq = 0

    @property
    def key(self) -> tuple[int, int]:
        """The episode parts now belong to: (history_version, generation_attempt)."""
        return self.history, self.attempt


class Events:
    """Event dicts and frame bytes for one era."""

    def __init__(self, era: Era) -> None:
        self.era = era
        self.envelope = PATHS[era].envelope_frames
        self.newest = era is Era.D
        self.frame_prefix = b'{"type":"data","data":[' if self.envelope else b"["
        self.frame_suffix = b"]}" if self.envelope else b"]\n"

    # ------------------------------------------------------------ events

    def message(self, chat_id: str, message: ChatMessage) -> Event:
        return ChatStreamEvent(type=MESSAGE, chat_id=chat_id, message=message).wire()

    def status(self, chat_id: str, status: str) -> Event:
        return ChatStreamEvent(
            type=STATUS, chat_id=chat_id, status=ChatStreamStatus(status=status)
        ).wire()

    def text_part(
        self, chat_id: str, kind: str, text: str, episode: Episode | None, role: str = "assistant"
    ) -> Event:
        """A ``text``/``reasoning`` delta: the hot path, one dict, no validation."""
        part: dict[str, Any] = {"role": role, "part": {"type": kind, "text": text}}
        if self.newest and episode is not None:
            episode.seq += 1
            part["history_version"] = episode.history
            part["generation_attempt"] = episode.attempt
            part["seq"] = episode.seq
        return {"type": MESSAGE_PART, "chat_id": chat_id, MESSAGE_PART: part}

    def text_parts(
        self, chat_id: str, deltas: list[tuple[str, str]], episode: Episode | None
    ) -> list[Event]:
        """``text_part`` for a burst of ``(kind, text)`` deltas."""
        if self.newest and episode is not None:
            return [self.text_part(chat_id, kind, text, episode) for kind, text in deltas]
        return [
            {
                "type": MESSAGE_PART,
                "chat_id": chat_id,
                MESSAGE_PART: {"role": "assistant", "part": {"type": kind, "text": text}},
            }
            for kind, text in deltas
        ]

    def part(
        self, chat_id: str, part: ChatMessagePart, role: str, episode: Episode | None
    ) -> Event:
        """Any other ``message_part`` (tool calls and results)."""
        stream_part = ChatStreamMessagePart(role=role, part=part)
        if self.newest and episode is not None:
            episode.seq += 1
            stream_part.history_version = episode.history
            stream_part.generation_attempt = episode.attempt
            stream_part.seq = episode.seq
        return ChatStreamEvent(type=MESSAGE_PART, chat_id=chat_id, message_part=stream_part).wire()

    def queue_update(self, chat_id: str, queue: list[ChatQueuedMessage]) -> Event:
        """The whole queue; an empty queue omits ``queued_messages`` (Go's omitempty)."""
        event = ChatStreamEvent(type=QUEUE_UPDATE, chat_id=chat_id)
        if queue:
            event.queued_messages = list(queue)
        return event.wire()

    def retry(
        self, chat_id: str, attempt: int, delay_ms: int, failure: Failure, at: datetime
    ) -> Event:
        """Seed form ``{attempt, delay_ms, error, retrying_at}``; later eras add the kind."""
        retry = ChatStreamRetry(
            attempt=attempt, delay_ms=delay_ms, error=failure.retry_text, retrying_at=at
        )
        if not self.envelope:
            retry.kind = failure.kind
            retry.provider = failure.provider
            if failure.status_code:
                retry.status_code = failure.status_code
        return ChatStreamEvent(type=RETRY, chat_id=chat_id, retry=retry).wire()

    def error(self, chat_id: str, failure: Failure) -> Event:
        """Seed ``{message}``; March ``{message, kind, provider, retryable, status_code}``;
        era d the full ``ChatError``."""
        return ChatStreamEvent(
            type=ERROR, chat_id=chat_id, error=self.error_payload(failure)
        ).wire()

    def error_payload(self, failure: Failure) -> ChatError:
        if self.envelope:
            return ChatError(message=failure.message)
        return failure.chat_error(detail=self.era in (Era.C, Era.D))

    @staticmethod
    def frame_break() -> Event:
        return {"type": FRAME_BREAK}

    def preview_reset(self, chat_id: str) -> Event:
        """Era D: drop the parts streamed so far in this episode; they will not be committed."""
        return ChatStreamEvent(type=PREVIEW_RESET, chat_id=chat_id).wire()

    def history_reset(self, chat_id: str) -> Event:
        return ChatStreamEvent(type=HISTORY_RESET, chat_id=chat_id).wire()

    # ------------------------------------------------------------ frames

    def frame(self, encoded: list[bytes]) -> bytes:
        """One data frame of already-encoded events."""
        return self.frame_prefix + b",".join(encoded) + self.frame_suffix

    def error_frame(self, message: str, detail: str) -> bytes:
        """Era a's ``{"type":"error","data":<codersdk.Response>}`` envelope."""
        return orjson.dumps({"type": ERROR, "data": {"message": message, "detail": detail}})
