"""Chats, their messages and queues, and the events each change makes: the pure core.

Every method is synchronous and returns the stream events the change produces, in Coder's
order; the adapters add time (``runner``) and delivery (``hub``). Statuses follow chatd
(spec section 4): eras a/b go ``pending`` -> ``running``; era d starts at ``running`` and
interrupts through ``interrupting``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final

import orjson

from loadtest.protocol.eras import PATHS, Era
from loadtest.protocol.models import (
    ChatActionRequiredToolCall,
    ChatInputPart,
    ChatMessage,
    ChatMessagePart,
    ChatMessageUsage,
    ChatQueuedMessage,
    ChatStreamActionRequired,
    ChatStreamEvent,
    CreateChatMessageResponse,
    EditChatMessageResponse,
    ErrorKind,
    ToolResult,
)
from loadtest.sim.accounts import User
from loadtest.sim.chaterror import failure
from loadtest.sim.errors import (
    ALREADY_ARCHIVED,
    ALREADY_UNARCHIVED,
    ARCHIVE_ACTIVE,
    ARCHIVED_POST,
    CONTENT_REQUIRED,
    NOT_INTERRUPTIBLE,
    QUEUE_FULL,
    ApiError,
    not_found,
)
from loadtest.sim.events import Episode, Event, Events, Failure, mark

#: chatd's ``MaxQueueSize``.
MAX_QUEUE: Final = 20
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


def _text_of(parts: list[ChatMessagePart] | None) -> str:
    return "".join(part.text or "" for part in parts or () if part.type == "text")


class Chat:
    """One chat's durable state plus what the current generation step has streamed."""

    __slots__ = (
        "archived",
        "buffer_done",
        "buffer_until",
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
        "parts",
        "queue",
        "queue_changed",
        "queued_for_capacity",
        "reasoning",
        "retry_event",
        "status",
        "text",
        "title",
        "tool_calls",
        "updated_at",
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

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


class ChatStore:
    def __init__(self, era: Era, clock: Callable[[], datetime]) -> None:
        self.era = era
        self.paths = PATHS[era]
        self.events = Events(era)
        self._clock = clock
        self.chats: dict[str, Chat] = {}
        self._message_id = 0
        self._queued_id = 0
        #: Told of each change a chat list shows (a ``/chats/watch`` kind): the watch hub.
        self.on_change: (
            Callable[[Chat, str, list[ChatActionRequiredToolCall] | None], object] | None
        ) = None

    def _changed(
        self, chat: Chat, kind: str, tool_calls: list[ChatActionRequiredToolCall] | None = None
    ) -> None:
        if self.on_change is not None and chat.id in self.chats:
            self.on_change(chat, kind, tool_calls)

    # ------------------------------------------------------------ reading

    def get(self, user: User, chat_id: str) -> Chat:
        chat = self.chats.get(chat_id)
        if chat is None or chat.owner_id != user.id:
            raise not_found()
        return chat

    def owned(self, user: User, archived: bool) -> list[Chat]:
        owned = [c for c in self.chats.values() if c.owner_id == user.id and c.archived == archived]
        return sorted(owned, key=lambda chat: chat.updated_at, reverse=True)

    def drop_owner(self, user_id: str) -> list[str]:
        """Forget a deleted user's chats; their ids, so turns can be stopped."""
        gone = [chat_id for chat_id, chat in self.chats.items() if chat.owner_id == user_id]
        for chat_id in gone:
            del self.chats[chat_id]
        return gone

    # ------------------------------------------------------------ changes by the API

    def _now(self, chat: Chat | None = None) -> datetime:
        now = self._clock()
        if chat is not None:
            chat.updated_at = now
        return now

    def _message(
        self,
        chat: Chat,
        role: str,
        content: list[ChatMessagePart],
        usage: ChatMessageUsage | None = None,
        chars: int | None = None,
    ) -> ChatMessage:
        """Persist a message; ``chars`` is its text length when the caller knows it."""
        self._message_id += 1
        message = ChatMessage(
            id=self._message_id,
            chat_id=chat.id,
            model_config_id=chat.model_config_id,
            created_at=self._now(chat),
            role=role,
            content=content,
        )
        if self.era is Era.D:
            # Section 8.5: messages carry a revision (re-sent when it rises).
            message.revision = 1
            if role == "user":
                message.created_by = chat.owner_id
        if usage is not None:
            message.usage = usage
        chat.messages.append(message)
        chat.history_chars += len(_text_of(content)) if chars is None else chars
        if self.era is Era.D:
            # Section 8.5: history_version rises on every committed message; seq restarts.
            chat.episode.history += 1
            chat.episode.seq = 0
        return message

    def _committed(self, chat: Chat, events: list[Event]) -> list[Event]:
        """Era D: a committed history change ends with ``preview_reset``."""
        if self.era is Era.D:
            events.append(self.events.preview_reset(chat.id))
        return events

    @staticmethod
    def _clear_step(chat: Chat) -> None:
        chat.reasoning, chat.text, chat.tool_calls, chat.delivered = [], [], [], []
        chat.held = None
        chat.parts.clear()
        chat.buffer_done = False

    @staticmethod
    def _buffer(chat: Chat) -> list[Event]:
        """The part buffer, emptied first if it still holds a finished step."""
        if chat.buffer_done:
            chat.parts.clear()
            chat.buffer_done = False
        return chat.parts

    def _set_status(self, chat: Chat, status: str) -> Event:
        changed = chat.status != status
        chat.status = status
        self._now(chat)
        if changed:
            self._changed(chat, "status_change")
        return self.events.status(chat.id, status)

    def _run_status(self) -> str:
        return "pending" if self.paths.has_pending else "running"

    def _start(self, chat: Chat, content: list[ChatMessagePart]) -> tuple[ChatMessage, list[Event]]:
        """Persist a user message and make the chat runnable."""
        message = self._message(chat, "user", content)
        chat.last_error = None
        self._clear_step(chat)
        events = self.events
        return message, self._committed(
            chat,
            [events.message(chat.id, message), self._set_status(chat, self._run_status())],
        )

    def create(
        self, user: User, content: list[ChatMessagePart], model_config_id: str
    ) -> tuple[Chat, list[Event]]:
        title = _text_of(content).strip().splitlines()[0][:80]
        chat = Chat(user.id, title, model_config_id, self._clock())
        _, events = self._start(chat, content)
        self.chats[chat.id] = chat
        self._changed(chat, "created")
        return chat, events

    def capacity(self, chat: Chat, queued: bool) -> None:
        """The concurrent-agent gate queued the chat, or admitted it (``capacity_change`` on
        the watch; the stream shows nothing: the chat stays ``running``)."""
        chat.queued_for_capacity = queued
        self._now(chat)
        self._changed(chat, "capacity_change")

    def retitle(self, chat: Chat) -> None:
        """The background title chatd asks the LLM for after the first turn (``title_change``
        on the watch socket; the chat stream has no event for it)."""
        title = "Chat: " + " ".join(chat.title.split()[:5])
        if title != chat.title:
            chat.title = title
            self._now(chat)
            self._changed(chat, "title_change")

    def post(
        self, chat: Chat, content: list[ChatMessagePart], busy_behavior: str | None
    ) -> tuple[dict[str, Any], list[Event], bool]:
        """``POST /messages``: (response, events, whether a turn must start)."""
        if chat.archived and self.era is not Era.A:  # era A had no such check
            raise ApiError(400, ARCHIVED_POST)
        if chat.active or chat.queue:
            if len(chat.queue) >= MAX_QUEUE:
                full, detail = QUEUE_FULL
                raise ApiError(429, full, detail.format(limit=MAX_QUEUE))
            self._queued_id += 1
            queued = ChatQueuedMessage(
                id=self._queued_id, chat_id=chat.id, content=content, created_at=self._now()
            )
            if self.era is Era.D:
                queued.model_config_id = chat.model_config_id
            chat.queue.append(queued)
            chat.queue_changed = True
            response = CreateChatMessageResponse(queued=True, queued_message=queued)
            events = [self.events.queue_update(chat.id, chat.queue)]
            if chat.active:
                return response.wire(), events, False
            # A backlog an error or interrupt left behind: run its head now, in order.
            return response.wire(), events + self.promote(chat, chat.queue[0])[1], True
        message, events = self._start(chat, content)
        return CreateChatMessageResponse(queued=False, message=message).wire(), events, True

    def editable(self, chat: Chat, raw_id: str) -> ChatMessage:
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
        self, chat: Chat, edited: ChatMessage, content: list[ChatMessagePart]
    ) -> tuple[dict[str, Any], list[Event]]:
        """Truncate at ``edited``, insert it anew, clear the queue, run again, and have every
        subscriber refetch everything (chatd's ``full_refresh``)."""
        deleted = [m.id for m in chat.messages if m.id >= edited.id]
        chat.messages = [m for m in chat.messages if m.id < edited.id]
        chat.history_chars = sum(len(_text_of(m.content)) for m in chat.messages)
        had_queue = bool(chat.queue)
        chat.queue.clear()
        chat.queue_changed = chat.queue_changed or had_queue
        chat.retry_event = None
        chat.episode.history += 1
        chat.episode.attempt = 1
        chat.episode.seq = 0
        message, _ = self._start(chat, content)
        events = self.events
        refresh = [events.history_reset(chat.id)] if self.era is Era.D else []
        refresh += [events.message(chat.id, m) for m in chat.messages]
        if had_queue:
            refresh.append(events.queue_update(chat.id, chat.queue))
        refresh.append(events.status(chat.id, chat.status))
        self._committed(chat, refresh)
        if self.era is Era.D:
            answer = EditChatMessageResponse(message=message, deleted_message_ids=deleted)
            return answer.wire(), refresh
        return message.wire(), refresh

    def queued(self, chat: Chat, raw_id: str) -> ChatQueuedMessage:
        try:
            queued_id = int(raw_id)
        except ValueError:
            raise ApiError(400, "Invalid queued message ID.") from None
        found = next((q for q in chat.queue if q.id == queued_id), None)
        if found is None:
            raise ApiError(404, "Queued message not found.")
        return found

    def delete_queued(self, chat: Chat, queued: ChatQueuedMessage) -> list[Event]:
        chat.queue.remove(queued)
        chat.queue_changed = True
        return [self.events.queue_update(chat.id, chat.queue)]

    def promote(self, chat: Chat, queued: ChatQueuedMessage) -> tuple[ChatMessage, list[Event]]:
        """Move a queued message into the history and run it (the chat must be idle)."""
        chat.queue.remove(queued)
        chat.queue_changed = True
        message, events = self._start(chat, list(queued.content))
        if self.era is Era.D:
            # The promoted message names the queued entry it came from.
            message.queued_message_id = queued.id
            events[0] = self.events.message(chat.id, message)
        events.insert(1, self.events.queue_update(chat.id, chat.queue))
        return message, events

    def set_archived(self, chat: Chat, archived: bool) -> None:
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
        chat.archived = archived
        self._now(chat)

    def interrupting(self, chat: Chat) -> list[Event]:
        """Era d's first half of an interrupt (409 when there is nothing to interrupt)."""
        if not chat.active:
            raise ApiError(409, NOT_INTERRUPTIBLE)
        return [self._set_status(chat, "interrupting")]

    # ------------------------------------------------------------ changes by a running turn

    def running(self, chat: Chat) -> list[Event]:
        return [self._set_status(chat, "running")]

    def text_part(self, chat: Chat, kind: str, text: str) -> Event:
        (chat.reasoning if kind == "reasoning" else chat.text).append(text)
        chat.delivered.append(text)
        event = self.events.text_part(chat.id, kind, text, chat.episode)
        self._buffer(chat).append(event)
        return event

    def text_parts(
        self,
        chat: Chat,
        deltas: list[tuple[str, str]],
        faults: list[str | None] | None = None,
    ) -> list[Event]:
        """``text_part`` for a burst of ``(kind, text)`` deltas sent together; ``faults``
        (one per delta: ``drop``, ``duplicate``, ``reorder`` or None) break the stream's
        integrity on purpose, as a lossy relay would."""
        for kind, text in deltas:
            (chat.reasoning if kind == "reasoning" else chat.text).append(text)
        events = self.events.text_parts(chat.id, deltas, chat.episode)
        if faults is None and chat.held is None:
            chat.delivered.extend(text for _, text in deltas)
        else:
            events = self._broken(chat, events, deltas, faults or [None] * len(deltas))
        self._buffer(chat).extend(events)
        return events

    def _broken(
        self,
        chat: Chat,
        events: list[Event],
        deltas: list[tuple[str, str]],
        faults: list[str | None],
    ) -> list[Event]:
        """The parts as sent with ``faults`` played, and a ``mark`` of each break a client
        can see (era D numbers parts; every era's text then differs from the commit)."""
        numbered = self.era is Era.D
        sent: list[Event] = []

        def deliver(event: Event, text: str) -> None:
            sent.append(event)
            chat.delivered.append(text)

        for event, (_, text), fault in zip(events, deltas, faults, strict=True):
            if fault == "drop":
                if numbered:
                    sent.append(mark("seq_gaps"))
                continue
            if fault == "reorder":
                chat.held = (event, text)
                continue
            deliver(event, text)
            if fault == "duplicate":
                sent.append(event)
                if numbered:
                    sent.append(mark("seq_duplicates"))  # the client drops the copy
                else:
                    chat.delivered.append(text)
            if chat.held is not None:
                deliver(*chat.held)
                chat.held = None
                if numbered:
                    sent.append(mark("seq_out_of_order"))
        return sent

    def tool_call(self, chat: Chat, call_id: str, name: str, args: dict[str, Any]) -> list[Event]:
        """A streamed tool call: its arguments as a delta, then the complete call."""
        events, episode = self.events, chat.episode
        delta = ChatMessagePart(
            type="tool-call",
            tool_call_id=call_id,
            tool_name=name,
            args_delta=orjson.dumps(args).decode(),
        )
        complete = ChatMessagePart(
            type="tool-call", tool_call_id=call_id, tool_name=name, args=args
        )
        if self.era is not Era.A:
            complete.created_at = self._now()  # not a field of the seed's ChatMessagePart
        chat.tool_calls.append(complete)
        out = [
            events.part(chat.id, delta, "assistant", episode),
            events.part(chat.id, complete, "assistant", episode),
        ]
        self._buffer(chat).extend(out)
        return out

    def finish_step(self, chat: Chat, output_tokens: int | None) -> list[Event]:
        """Persist the step's assistant message (with ``usage``); the buffer is kept until
        the next step streams."""
        content = []
        if chat.reasoning:
            content.append(ChatMessagePart(type="reasoning", text="".join(chat.reasoning)))
        text = "".join(chat.text)
        if text:
            content.append(ChatMessagePart(type="text", text=text))
        content.extend(chat.tool_calls)
        output = max(1, len(text) // 4) if output_tokens is None else output_tokens
        inputs = 50 + chat.history_chars // 4
        usage = ChatMessageUsage(
            input_tokens=inputs, output_tokens=output, total_tokens=inputs + output
        )
        # What a client put together from the deltas, against what was committed.
        committed = "".join(chat.reasoning) + text
        broken = [mark("content_mismatches")] if "".join(chat.delivered) != committed else []
        message = self._message(chat, "assistant", content, usage, len(text))
        chat.reasoning, chat.text, chat.tool_calls, chat.delivered = [], [], [], []
        chat.buffer_done = True
        return self._committed(chat, [*broken, self.events.message(chat.id, message)])

    def requires_action(
        self, chat: Chat, call_id: str, name: str, args: dict[str, Any], output_tokens: int | None
    ) -> list[Event]:
        """Era D: the step ends in a dynamic tool call only the client can run. Its commit,
        then ``requires_action`` and the ``action_required`` event naming the calls (that
        order is a guess; the snapshot's is section 8.5's)."""
        chat.tool_calls.append(
            ChatMessagePart(type="tool-call", tool_call_id=call_id, tool_name=name, args=args)
        )
        committed = self.finish_step(chat, output_tokens)
        chat.needs = [
            ChatActionRequiredToolCall(
                tool_call_id=call_id, tool_name=name, args=orjson.dumps(args).decode()
            )
        ]
        status = self._set_status(chat, "requires_action")
        self._changed(chat, "action_required", chat.needs)
        return [*committed[:-1], status, committed[-1], self._action_required(chat)]

    def _action_required(self, chat: Chat) -> Event:
        return ChatStreamEvent(
            type="action_required",
            chat_id=chat.id,
            action_required=ChatStreamActionRequired(tool_calls=list(chat.needs)),
        ).wire()

    def tool_results(self, chat: Chat, results: list[ToolResult]) -> list[Event]:
        """``POST /tool-results``: the client's answers become a tool message and the chat
        runs on (409 when it waits for none; 400 for a call it did not ask for)."""
        if chat.status != "requires_action":
            raise ApiError(409, "Chat is not waiting for tool results.")
        asked = {call.tool_call_id: call for call in chat.needs}
        parts = []
        for result in results:
            call = asked.get(result.tool_call_id)
            if call is None:
                raise ApiError(400, "Unknown tool call ID.", result.tool_call_id)
            parts.append(
                ChatMessagePart(
                    type="tool-result",
                    tool_call_id=call.tool_call_id,
                    tool_name=call.tool_name,
                    result=result.output,
                )
            )
        if not parts:
            raise ApiError(400, "At least one tool result is required.")
        chat.needs = []
        message = self._message(chat, "tool", parts)
        return self._committed(
            chat, [self.events.message(chat.id, message), self._set_status(chat, "running")]
        )

    def tool_result(
        self, chat: Chat, call_id: str, name: str, result: dict[str, Any]
    ) -> list[Event]:
        part = ChatMessagePart(
            type="tool-result", tool_call_id=call_id, tool_name=name, result=result
        )
        streamed = self.events.part(chat.id, part, "tool", chat.episode)
        self._buffer(chat).append(streamed)
        chat.buffer_done = True
        message = self._message(chat, "tool", [part])
        return self._committed(chat, [streamed, self.events.message(chat.id, message)])

    def retry(
        self, chat: Chat, attempt: int, delay_ms: int, failure: Failure, at: datetime
    ) -> list[Event]:
        event = self.events.retry(chat.id, attempt, delay_ms, failure, at)
        chat.retry_event = event
        chat.episode.attempt += 1
        chat.episode.seq = 0
        self._clear_step(chat)
        if self.era is Era.D:
            # A new generation attempt: what the last one streamed is thrown away.
            return [event, self.events.preview_reset(chat.id)]
        return [event]

    def fail(self, chat: Chat, failure: Failure) -> list[Event]:
        chat.last_error = failure
        chat.retry_event = None
        self._clear_step(chat)
        return [self.events.error(chat.id, failure), self._set_status(chat, "error")]

    def finish_turn(self, chat: Chat, promote: bool = True) -> tuple[list[Event], bool]:
        """End of a run: promote the queue head (no ``waiting`` between) or wait."""
        chat.retry_event = None
        chat.needs = []
        chat.episode.seq = 0
        if promote and chat.queue:
            head = chat.queue[0]
            return self.promote(chat, head)[1], True
        chat.buffer_until = self._clock() + BUFFER_GRACE
        return [self._set_status(chat, "waiting")], False

    def interrupted(self, chat: Chat, promote: bool = True) -> tuple[list[Event], bool]:
        """A cancelled run: persist what the step had streamed, then end the turn."""
        events: list[Event] = []
        if chat.text or chat.reasoning or chat.tool_calls:
            events += self.finish_step(chat, None)
        more, promoted = self.finish_turn(chat, promote)
        return events + more, promoted

    # ------------------------------------------------------------ the stream's snapshot

    # ------------------------------------------------------------ replicas

    def restore(
        self,
        chat_id: str,
        owner_id: str,
        title: str,
        model_config_id: str,
        messages: list[ChatMessage],
    ) -> Chat:
        """A chat taken over from a dead replica, rebuilt from its committed history: ids
        continue above its last message, era D's next commit has the next history_version
        and the next generation is a new attempt."""
        chat = Chat(owner_id, title, model_config_id, self._clock())
        chat.id = chat_id
        chat.messages = messages
        self._message_id = max([self._message_id, *(m.id for m in messages)])
        chat.episode.history = 1 + len(messages)
        chat.episode.attempt += 1
        self.chats[chat_id] = chat
        return chat

    def taken_over(self, chat: Chat) -> list[Event]:
        """A chat recovered from a dead replica runs its turn again here: a new generation
        attempt (era D: ``preview_reset``) and ``running`` again."""
        self._clear_step(chat)
        chat.status = ""
        reset = [self.events.preview_reset(chat.id)] if self.era is Era.D else []
        return [*reset, self._set_status(chat, self._run_status())]

    def snapshot(self, chat: Chat, after_id: int | None) -> list[Event]:
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
        # Era D relays only the episode under way: a committed step's parts are history.
        parts = chat.parts if chat.active and not chat.buffer_done else []
        error = []
        if chat.status == "error":
            # With no error recorded, chatd falls back to a generic one.
            error = [events.error(chat.id, chat.last_error or failure(ErrorKind.GENERIC, ""))]
        action = [self._action_required(chat)] if chat.status == "requires_action" else []
        retry = [chat.retry_event] if chat.retry_event is not None else []
        # Section 8.5's order; preview_reset always, then the current episode's parts.
        reset = [events.preview_reset(chat.id)]
        return messages + queue + status + error + action + retry + reset + parts
