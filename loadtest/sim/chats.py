"""Chats, their messages and queues, and the events each change makes: the pure core.

Every method is synchronous and returns the stream events the change produces, in Coder's
order; the adapters add time (``runner``) and delivery (``hub``). Statuses follow chatd
(spec section 4): eras a/b go ``pending`` -> ``running``; era d starts at ``running`` and
interrupts through ``interrupting``.

Era D (spec §9.2): each method is one of chatd's transactions, and returns what a stream that
syncs after it is sent (coderd/x/chatd/ARCHITECTURE.md, "Sync operation"): messages, the
queue, the status, the error, ``action_required``, ``retry``, then ``preview_reset`` when the
history changed or a new generation attempt was recorded (``record_attempt``, before every
LLM call or tool batch).
"""

from __future__ import annotations

from typing import Any

from loadtest.protocol.constants import (
    ALREADY_ARCHIVED,
    ALREADY_UNARCHIVED,
    ARCHIVE_ACTIVE,
    ARCHIVED_POST,
    MAX_QUEUE,
    NOT_INTERRUPTIBLE,
    QUEUE_FULL,
)
from loadtest.protocol.eras import Era
from loadtest.protocol.models import (
    ChatMessage,
    ChatMessagePart,
    ChatQueuedMessage,
    CreateChatMessageResponse,
    EditChatMessageResponse,
    ErrorKind,
)
from loadtest.sim.accounts import User
from loadtest.sim.chat_state import ChatState, text_of
from loadtest.sim.chat_turns import ChatTurns
from loadtest.sim.chaterror import failure
from loadtest.sim.errors import ApiError, not_found
from loadtest.sim.events import Event

#: ``ChatState`` is ``chat_state``'s, named here too for the importers of its old home.


class ChatStore(ChatTurns):
    """The chats of one deployment: what the API reads and changes, and a stream's snapshot
    (a running turn's changes: ``ChatTurns``)."""

    # ------------------------------------------------------------ reading

    def get(self, user: User, chat_id: str) -> ChatState:
        chat = self.chats.get(chat_id)
        if chat is None or chat.owner_id != user.id:
            raise not_found()
        return chat

    def owned(self, user: User, archived: bool) -> list[ChatState]:
        owned = [c for c in self.chats.values() if c.owner_id == user.id and c.archived == archived]
        return sorted(owned, key=lambda chat: chat.updated_at, reverse=True)

    def drop_owner(self, user_id: str) -> list[str]:
        """Forget a deleted user's chats; their ids, so turns can be stopped."""
        gone = [chat_id for chat_id, chat in self.chats.items() if chat.owner_id == user_id]
        for chat_id in gone:
            del self.chats[chat_id]
        return gone

    # ------------------------------------------------------------ changes by the API

    def create(
        self,
        user: User | None,
        content: list[ChatMessagePart],
        model_config_id: str,
        workspace_id: str | None = None,
        parent: ChatState | None = None,
        title: str | None = None,
    ) -> tuple[ChatState, list[Event]]:
        """A new chat and its first turn's events; with ``parent``, a sub-agent that chatd's
        ``spawn_agent`` makes (section 10.3): the parent's workspace, its parent and root."""
        title = title or text_of(content).strip().splitlines()[0][:80]
        owner = parent.owner_id if parent is not None else user.id if user is not None else ""
        chat = ChatState(owner, title, model_config_id, self._clock())
        chat.workspace_id = workspace_id
        if parent is not None:
            chat.workspace_id = parent.workspace_id
            chat.parent_chat_id = chat.root_chat_id = parent.id
            parent.children.append(chat)
        self._tx(chat)  # snapshot_version 1; the initial history makes history_version 1
        _, events = self._start(chat, content)
        self.chats[chat.id] = chat
        self._changed(chat, "created")
        return chat, events

    def capacity(self, chat: ChatState, queued: bool) -> None:
        """The concurrent-agent gate queued the chat, or admitted it (``capacity_change`` on
        the watch; the stream shows nothing: the chat stays ``running``)."""
        chat.queued_for_capacity = queued
        self._now(chat)
        self._changed(chat, "capacity_change")

    def retitle(self, chat: ChatState) -> None:
        """The background title chatd asks the LLM for after the first turn (``title_change``
        on the watch socket; the chat stream has no event for it)."""
        title = "Chat: " + " ".join(chat.title.split()[:5])
        if title != chat.title:
            chat.title = title
            self._now(chat)
            self._changed(chat, "title_change")

    def post(
        self, chat: ChatState, content: list[ChatMessagePart], busy_behavior: str | None
    ) -> tuple[dict[str, Any], list[Event], bool]:
        """``POST /messages``: (response, events, whether a turn must start)."""
        if chat.archived and self.era is not Era.A:  # era A had no such check
            raise ApiError(400, ARCHIVED_POST)
        if chat.active or chat.queue:
            if len(chat.queue) >= MAX_QUEUE:
                full, detail = QUEUE_FULL
                raise ApiError(429, full, detail.format(limit=MAX_QUEUE))
            self._tx(chat)
            self._queued_id += 1
            queued = ChatQueuedMessage(
                id=self._queued_id, chat_id=chat.id, content=content, created_at=self._now()
            )
            if self.era is Era.D:
                queued.model_config_id = chat.model_config_id
            chat.queue.append(queued)
            response = CreateChatMessageResponse(queued=True, queued_message=queued)
            events = [self._queue_changed(chat)]
            if chat.active:
                return response.wire(), events, False
            # A backlog an error or interrupt left behind: run its head now, in order.
            return response.wire(), events + self._promote(chat, chat.queue[0])[1], True
        self._tx(chat)
        message, events = self._start(chat, content)
        return CreateChatMessageResponse(queued=False, message=message).wire(), events, True

    def editable(self, chat: ChatState, raw_id: str) -> ChatMessage:
        try:
            message_id = int(raw_id)
        except ValueError:
            raise ApiError(400, "Invalid chat message ID.") from None
        message = next((m for m in chat.messages if m.id == message_id), None)
        if message is None:
            raise ApiError(404, "Chat message not found.")
        if message.role != "user":
            raise ApiError(400, "Only user messages can be edited.")
        return message

    def edit(
        self, chat: ChatState, edited: ChatMessage, content: list[ChatMessagePart]
    ) -> tuple[dict[str, Any], list[Event]]:
        """Truncate at ``edited``, insert it anew, clear the queue, run again, and have every
        subscriber refetch everything (chatd's ``full_refresh``)."""
        self._tx(chat)
        deleted = [m.id for m in chat.messages if m.id >= edited.id]
        chat.messages = [m for m in chat.messages if m.id < edited.id]
        chat.history_chars = sum(len(text_of(m.content)) for m in chat.messages)
        had_queue = bool(chat.queue)
        chat.queue.clear()
        chat.needs = []
        message, _ = self._start(chat, content)
        events = self.events
        refresh = [events.history_reset(chat.id)] if self.era is Era.D else []
        refresh += [events.message(chat.id, m) for m in chat.messages]
        if had_queue:
            refresh.append(self._queue_changed(chat))
        refresh.append(events.status(chat.id, chat.status))
        self._committed(chat, refresh)
        if self.era is Era.D:
            answer = EditChatMessageResponse(message=message, deleted_message_ids=deleted)
            return answer.wire(), refresh
        return message.wire(), refresh

    def queued(self, chat: ChatState, raw_id: str) -> ChatQueuedMessage:
        try:
            queued_id = int(raw_id)
        except ValueError:
            raise ApiError(400, "Invalid queued message ID.") from None
        found = next((q for q in chat.queue if q.id == queued_id), None)
        if found is None:
            raise ApiError(404, "Queued message not found.")
        return found

    def delete_queued(self, chat: ChatState, queued: ChatQueuedMessage) -> list[Event]:
        self._tx(chat)
        chat.queue.remove(queued)
        return [self._queue_changed(chat)]

    def promote(
        self, chat: ChatState, queued: ChatQueuedMessage
    ) -> tuple[ChatMessage, list[Event]]:
        """Move a queued message into the history and run it (the chat must be idle). Spec
        §9.1: the message carries no ``queued_message_id``."""
        self._tx(chat)
        return self._promote(chat, queued)

    def set_archived(self, chat: ChatState, archived: bool) -> None:
        """Archive or unarchive: 400 when it already is so (era A's POSTs and later eras'
        PATCH alike); era D refuses to archive an active chat."""
        if archived and chat.archived:
            raise ApiError(400, ALREADY_ARCHIVED)
        if not archived and not chat.archived:
            raise ApiError(
                400, "Chat is not archived." if self.era is Era.A else ALREADY_UNARCHIVED
            )
        if archived and chat.active and self.era is Era.D:
            raise ApiError(409, ARCHIVE_ACTIVE)
        self._tx(chat)
        chat.archived = archived
        self._now(chat)

    def interrupting(self, chat: ChatState) -> list[Event]:
        """Era d's first half of an interrupt (409 when there is nothing to interrupt)."""
        if not chat.active:
            raise ApiError(409, NOT_INTERRUPTIBLE)
        self._tx(chat)
        return [self._set_status(chat, "interrupting")]

    # ------------------------------------------------------------ the stream's snapshot

    def snapshot(self, chat: ChatState, after_id: int | None) -> list[Event]:
        """What a new stream gets first (spec section 3.5, per era)."""
        events = self.events
        messages = [
            events.message(chat.id, m) for m in chat.messages if after_id is None or m.id > after_id
        ]
        queued = chat.queue_changed if self.era is Era.D else bool(chat.queue)
        queue = [events.queue_update(chat.id, chat.queue)] if queued else []
        status = [events.status(chat.id, chat.status)]
        retained = chat.buffer_until is not None and self._clock() < chat.buffer_until
        if self.era is not Era.D:
            parts = chat.parts if chat.active or retained else []
            return status + parts + messages + queue
        # Era D relays only the episode under way (its attempt recorded, nothing committed
        # since): a committed step's parts are history.
        parts = chat.parts if chat.active and chat.episode.attempt else []
        error = []
        if chat.status == "error":
            # With no error recorded, chatd falls back to a generic one.
            error = [events.error(chat.id, chat.last_error or failure(ErrorKind.GENERIC, ""))]
        action = [self._action_required(chat)] if chat.status == "requires_action" else []
        retry = [chat.retry_event] if chat.retry_event is not None else []
        # Section 8.5's order; preview_reset always, then the current episode's parts.
        reset = [events.preview_reset(chat.id)]
        return messages + queue + status + error + action + retry + reset + parts
