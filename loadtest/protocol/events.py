"""The stream's event kinds, each declared once: its wire name, payload key and where it may come.

Coder names them in ``codersdk/chats.go`` (``ChatStreamEventType*``); era D's stream loop
(``coderd/x/chatd``, spec §9) adds ``preview_reset`` and ``history_reset``. Everything else
(the simulator's events, the tracker's dispatch table, the recorder's tallies) reads its
kinds from here, so a new kind starts with one line in this file and a test names every
place that must then handle it; a kind that is only counted says so (``counted``: a figure
of ``core/figures.py``) and needs no tracker code. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from loadtest.protocol.eras import Era


@dataclass(frozen=True, slots=True)
class EventKind:
    """One kind of stream event."""

    #: Its ``type`` on the wire (and the constant's value).
    name: str
    #: The event's key that holds its payload (None: the event carries none).
    payload: str | None
    #: Whether the snapshot a connection gets on connect may hold it.
    in_snapshot: bool
    #: The first era that sends it.
    since: Era
    #: What it means, in one line.
    doc: str
    #: For a kind that needs no handling of its own: the count figure (``core/figures.py``)
    #: each live one adds to; the tracker's table then counts it without an entry of its own.
    counted: str | None = None


#: Every kind, by wire name, in declaration order.
EVENT_KINDS: Final[dict[str, EventKind]] = {}


def _declare(
    name: str,
    *,
    payload: str | None,
    in_snapshot: bool,
    since: Era,
    doc: str,
    counted: str | None = None,
) -> str:
    """Register a kind; its wire name is the constant callers compare ``event["type"]`` to."""
    if name in EVENT_KINDS:
        raise ValueError(f"event kind {name!r} declared twice")
    EVENT_KINDS[name] = EventKind(name, payload, in_snapshot, since, doc, counted)
    return name


# codersdk/chats.go: ChatStreamEventTypeMessagePart; the snapshot replays the buffered step
# (eras A-C: chatd's stream buffer; era D: the episode after its preview_reset, spec §9).
MESSAGE_PART: Final = _declare(
    "message_part",
    payload="message_part",
    in_snapshot=True,
    since=Era.A,
    doc="a delta of the step being generated (text, reasoning, a tool call or result)",
)
# codersdk/chats.go: ChatStreamEventTypeMessage (the snapshot holds the history after after_id).
MESSAGE: Final = _declare(
    "message",
    payload="message",
    in_snapshot=True,
    since=Era.A,
    doc="a committed message (a user's, or the end of an assistant step)",
)
# codersdk/chats.go: ChatStreamEventTypeStatus (the snapshot ends with the chat's status).
STATUS: Final = _declare(
    "status",
    payload="status",
    in_snapshot=True,
    since=Era.A,
    doc="the chat's status changed",
)
# codersdk/chats.go: ChatStreamEventTypeError. In a snapshot only as era A's error envelope
# (decode.STREAM_ERROR_KEY): the server refused the stream.
ERROR: Final = _declare(
    "error",
    payload="error",
    in_snapshot=True,
    since=Era.A,
    doc="the turn's provider error, or (era A's envelope) the stream's refusal",
)
# codersdk/chats.go: ChatStreamEventTypeQueueUpdate (the snapshot holds the queue).
QUEUE_UPDATE: Final = _declare(
    "queue_update",
    payload="queued_messages",
    in_snapshot=True,
    since=Era.A,
    doc="the whole queue of messages waiting behind the running turn",
)
# codersdk/chats.go: ChatStreamEventTypeRetry; live only (a retry is a moment, not state).
RETRY: Final = _declare(
    "retry",
    payload="retry",
    in_snapshot=False,
    since=Era.A,
    doc="the provider call failed and is retried after a delay: the step starts again",
)
# codersdk/chats.go: ChatStreamEventTypeActionRequired (era D, spec §9.3); a snapshot
# repeats it while the chat waits, so a late stream can still answer.
ACTION_REQUIRED: Final = _declare(
    "action_required",
    payload="action_required",
    in_snapshot=True,
    since=Era.D,
    doc="the turn waits for tool calls only the client runs",
)
# coderd/x/chatd stream loop: ChatStreamEventTypePreviewReset (era D, spec §9.1): every
# snapshot of a running chat starts the current episode with one.
PREVIEW_RESET: Final = _declare(
    "preview_reset",
    payload=None,
    in_snapshot=True,
    since=Era.D,
    doc="the parts streamed since the last commit are thrown away",
)
# coderd/x/chatd stream loop: ChatStreamEventTypeHistoryReset (era D, spec §9.1); live only
# (guess: a connect snapshot sends the history without one).
HISTORY_RESET: Final = _declare(
    "history_reset",
    payload=None,
    in_snapshot=False,
    since=Era.D,
    doc="the history was rewritten: the whole history follows again",
)
