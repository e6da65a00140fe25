"""A chat as chatd keeps it, and the transactions every change of one is made of: pure.

Each transaction returns the stream events it makes, in Coder's order (era D: what a stream
that syncs after it is sent, coderd/x/chatd/ARCHITECTURE.md, "Sync operation"). The changes
are made of these by ``chats.ChatStore`` (the API's) and ``chat_turns.ChatTurns`` (a turn's).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from loadtest.protocol.constants import (
    CONTENT_REQUIRED,
)
from loadtest.protocol.eras import PATHS, Era
from loadtest.protocol.models import (
    ChatActionRequiredToolCall,
    ChatInputPart,
    ChatMessage,
    ChatMessagePart,
    ChatMessageUsage,
    ChatQueuedMessage,
)
from loadtest.sim.errors import ApiError
from loadtest.sim.events import Episode, Event, Events, Failure

#: How long a finished run's last deltas stay in the snapshot (wall time, not scaled).
BUFFER_GRACE: Final = timedelta(seconds=5)
ACTIVE: Final = frozenset({"pending", "running", "interrupting", "requires_action"})


def input_parts(content: list[ChatInputPart] | None) -> list[ChatMessagePart]:
    """The ``content`` of a create/post/edit request as message parts, checked as Coder does:
    text is whitespace-trimmed before it is stored, and nothing left is no content."""
    parts = []
    for index, item in enumerate(content or ()):
        if item.type != "text":
            detail = f'content[{index}].type "{item.type}" is not supported.'
            raise ApiError(400, "Invalid input part.", detail)
        text = (item.text or "").strip()
        if text:
            parts.append(ChatMessagePart(type="text", text=text))
    if not parts:
        raise ApiError(400, *CONTENT_REQUIRED)
    return parts


def text_of(parts: list[ChatMessagePart] | None) -> str:
    """The text of a message's parts, joined."""
    return "".join(part.text or "" for part in parts or () if part.type == "text")


class ChatState:
    """One chat's durable state plus what the current generation step has streamed."""

    __slots__ = (
        "archived",
        "buffer_done",
        "buffer_until",
        "children",
        "created_at",
        "delivered",
        "episode",
        "held",
        "history_chars",
        "id",
        "last_error",
        "messages",
        "model_config_id",
        "needs",
        "owner_id",
        "parent_chat_id",
        "parts",
        "queue",
        "queue_changed",
        "queued_for_capacity",
        "reasoning",
        "retry_event",
        "root_chat_id",
        "status",
        "text",
        "title",
        "tool_calls",
        "updated_at",
        "workspace_id",
    )

    def __init__(self, owner_id: str, title: str, model_config_id: str, now: datetime) -> None:
        self.id = str(uuid.uuid4())
        self.owner_id = owner_id
        self.title = title
        self.model_config_id = model_config_id
        self.status = "waiting"
        self.last_error: Failure | None = None
        self.created_at = now
        self.updated_at = now
        self.archived = False
        self.messages: list[ChatMessage] = []
        #: Text characters in ``messages``, for the usage's ``input_tokens``.
        self.history_chars = 0
        self.queue: list[ChatQueuedMessage] = []
        #: Era D's ``queue_version > 0``: the snapshot then always holds a queue_update.
        self.queue_changed = False
        #: ``message_part`` events of the step being generated (the snapshot's buffer); kept
        #: when the step ends, replaced when the next one streams, dropped BUFFER_GRACE
        #: after the run ends (chatd's ``bufferRetainGracePeriod``).
        self.parts: list[Event] = []
        self.buffer_done = False
        self.buffer_until: datetime | None = None
        self.retry_event: Event | None = None
        self.episode = Episode()
        self.reasoning: list[str] = []
        self.text: list[str] = []
        #: Text (and reasoning) of the step as a client puts it together from what was
        #: sent, integrity faults included (era D drops repeated seqs, as its UI does).
        self.delivered: list[str] = []
        #: A part held back by a ``reorder`` fault, sent after the next one.
        self.held: tuple[Event, str] | None = None
        self.tool_calls: list[ChatMessagePart] = []
        #: Section 8.7: running, but waiting for the concurrent-agent gate (no output).
        self.queued_for_capacity = False
        #: The tool calls a ``requires_action`` chat waits on the client for.
        self.needs: list[ChatActionRequiredToolCall] = []
        #: Section 10.1: the workspace its tools run in (none: they fail, the turn goes on).
        self.workspace_id: str | None = None
        #: Section 10.3: a sub-agent's parent and root (depth 1: both the spawning chat), and
        #: a root chat's sub-agents, oldest first.
        self.parent_chat_id: str | None = None
        self.root_chat_id: str | None = None
        self.children: list[ChatState] = []

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


class ChatLedger:
    """The chats of one deployment and the transactions they change by."""

    def __init__(self, era: Era, clock: Callable[[], datetime]) -> None:
        self.era = era
        self.paths = PATHS[era]
        self.events = Events(era)
        self._clock = clock
        self.chats: dict[str, ChatState] = {}
        self._message_id = 0
        self._queued_id = 0
        #: Told of each change a chat list shows (a ``/chats/watch`` kind): the watch hub.
        self.on_change: Callable[[ChatState, str], object] | None = None
        #: Told of every part as generated, before any integrity fault (chat id, episode key,
        #: the parts): chatd's message part buffer, which the relay serves (a replica).
        self.on_parts: Callable[[str, tuple[int, int], list[Event]], object] | None = None

    def _changed(self, chat: ChatState, kind: str) -> None:
        if self.on_change is not None and chat.id in self.chats:
            self.on_change(chat, kind)

    def _generated(self, chat: ChatState, parts: list[Event]) -> None:
        if self.on_parts is not None and parts:
            self.on_parts(chat.id, chat.episode.key, parts)

    # ------------------------------------------------------------ transactions

    def _now(self, chat: ChatState | None = None) -> datetime:
        now = self._clock()
        if chat is not None:
            chat.updated_at = now
        return now

    @staticmethod
    def _tx(chat: ChatState) -> None:
        """A transaction on the chat begins (``snapshot_version`` + 1)."""
        chat.episode.transaction()

    @staticmethod
    def _clear_retry(chat: ChatState) -> None:
        """The retry state goes with the attempt it was recorded for (chatd's trigger)."""
        if chat.retry_event is not None:
            chat.retry_event = None
            chat.episode.retry = chat.episode.snapshot

    def _queue_changed(self, chat: ChatState) -> Event:
        chat.queue_changed = True
        chat.episode.queue = chat.episode.snapshot
        return self.events.queue_update(chat.id, chat.queue)

    def _message(
        self,
        chat: ChatState,
        role: str,
        content: list[ChatMessagePart],
        usage: ChatMessageUsage | None = None,
        chars: int | None = None,
    ) -> ChatMessage:
        """Persist a message (spec §9.1: ``codersdk.ChatMessage`` carries no revision);
        ``chars`` is its text length when the caller knows it."""
        self._message_id += 1
        message = ChatMessage(
            id=self._message_id,
            chat_id=chat.id,
            model_config_id=chat.model_config_id,
            created_at=self._now(chat),
            role=role,
            content=content,
        )
        if self.era is Era.D and role == "user":
            message.created_by = chat.owner_id
        if usage is not None:
            message.usage = usage
        chat.messages.append(message)
        chat.history_chars += len(text_of(content)) if chars is None else chars
        # The message trigger: history_version takes this transaction's snapshot, and the
        # generation attempt (with its retry state) starts over.
        chat.episode.history_changed()
        self._clear_retry(chat)
        return message

    def _committed(self, chat: ChatState, events: list[Event]) -> list[Event]:
        """Era D: a committed history change ends with ``preview_reset``."""
        if self.era is Era.D:
            events.append(self.events.preview_reset(chat.id))
        return events

    @staticmethod
    def _clear_step(chat: ChatState) -> None:
        chat.reasoning, chat.text, chat.tool_calls, chat.delivered = [], [], [], []
        chat.held = None
        chat.parts.clear()
        chat.buffer_done = False

    @staticmethod
    def _buffer(chat: ChatState) -> list[Event]:
        """The part buffer, emptied first if it still holds a finished step."""
        if chat.buffer_done:
            chat.parts.clear()
            chat.buffer_done = False
        return chat.parts

    def _set_status(self, chat: ChatState, status: str) -> Event:
        changed = chat.status != status
        chat.status = status
        self._now(chat)
        if changed:
            self._changed(chat, "status_change")
        return self.events.status(chat.id, status)

    def _run_status(self) -> str:
        return "pending" if self.paths.has_pending else "running"

    def _start(
        self, chat: ChatState, content: list[ChatMessagePart]
    ) -> tuple[ChatMessage, list[Event]]:
        """Persist a user message and make the chat runnable (within a transaction)."""
        message = self._message(chat, "user", content)
        chat.last_error = None
        self._clear_step(chat)
        events = self.events
        return message, self._committed(
            chat,
            [events.message(chat.id, message), self._set_status(chat, self._run_status())],
        )

    def _promote(
        self, chat: ChatState, queued: ChatQueuedMessage
    ) -> tuple[ChatMessage, list[Event]]:
        chat.queue.remove(queued)
        queue = self._queue_changed(chat)
        message, events = self._start(chat, list(queued.content))
        events.insert(1, queue)
        return message, events
