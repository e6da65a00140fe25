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

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final

import orjson

from loadtest.protocol.constants import (
    ALREADY_ARCHIVED,
    ALREADY_UNARCHIVED,
    ARCHIVE_ACTIVE,
    ARCHIVED_POST,
    CONTENT_REQUIRED,
    INVALID_STATE,
    MAX_QUEUE,
    NOT_INTERRUPTIBLE,
    QUEUE_FULL,
    TOOL_CALL_CANCELLED,
    TOOL_RESULT_DUPLICATE,
    TOOL_RESULT_INVALID_JSON,
    TOOL_RESULT_MISSING,
    TOOL_RESULT_UNEXPECTED,
    go_quote,
)
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
from loadtest.sim.errors import ApiError, not_found
from loadtest.sim.events import Episode, Event, Events, Failure, mark
from loadtest.sim.faults import PART_DROP, PART_DUPLICATE, PART_REORDER

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
        self.children: list[Chat] = []

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
        self.on_change: Callable[[Chat, str], object] | None = None
        #: Told of every part as generated, before any integrity fault (chat id, episode key,
        #: the parts): chatd's message part buffer, which the relay serves (a replica).
        self.on_parts: Callable[[str, tuple[int, int], list[Event]], object] | None = None

    def _changed(self, chat: Chat, kind: str) -> None:
        if self.on_change is not None and chat.id in self.chats:
            self.on_change(chat, kind)

    def _generated(self, chat: Chat, parts: list[Event]) -> None:
        if self.on_parts is not None and parts:
            self.on_parts(chat.id, chat.episode.key, parts)

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

    # ------------------------------------------------------------ transactions

    def _now(self, chat: Chat | None = None) -> datetime:
        now = self._clock()
        if chat is not None:
            chat.updated_at = now
        return now

    @staticmethod
    def _tx(chat: Chat) -> None:
        """A transaction on the chat begins (``snapshot_version`` + 1)."""
        chat.episode.transaction()

    @staticmethod
    def _clear_retry(chat: Chat) -> None:
        """The retry state goes with the attempt it was recorded for (chatd's trigger)."""
        if chat.retry_event is not None:
            chat.retry_event = None
            chat.episode.retry = chat.episode.snapshot

    def _queue_changed(self, chat: Chat) -> Event:
        chat.queue_changed = True
        chat.episode.queue = chat.episode.snapshot
        return self.events.queue_update(chat.id, chat.queue)

    def _message(
        self,
        chat: Chat,
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
        chat.history_chars += len(_text_of(content)) if chars is None else chars
        # The message trigger: history_version takes this transaction's snapshot, and the
        # generation attempt (with its retry state) starts over.
        chat.episode.history_changed()
        self._clear_retry(chat)
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
        """Persist a user message and make the chat runnable (within a transaction)."""
        message = self._message(chat, "user", content)
        chat.last_error = None
        self._clear_step(chat)
        events = self.events
        return message, self._committed(
            chat,
            [events.message(chat.id, message), self._set_status(chat, self._run_status())],
        )

    # ------------------------------------------------------------ changes by the API

    def create(
        self,
        user: User | None,
        content: list[ChatMessagePart],
        model_config_id: str,
        workspace_id: str | None = None,
        parent: Chat | None = None,
        title: str | None = None,
    ) -> tuple[Chat, list[Event]]:
        """A new chat and its first turn's events; with ``parent``, a sub-agent that chatd's
        ``spawn_agent`` makes (section 10.3): the parent's workspace, its parent and root."""
        title = title or _text_of(content).strip().splitlines()[0][:80]
        owner = parent.owner_id if parent is not None else user.id if user is not None else ""
        chat = Chat(owner, title, model_config_id, self._clock())
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
        self._tx(chat)
        deleted = [m.id for m in chat.messages if m.id >= edited.id]
        chat.messages = [m for m in chat.messages if m.id < edited.id]
        chat.history_chars = sum(len(_text_of(m.content)) for m in chat.messages)
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
        self._tx(chat)
        chat.queue.remove(queued)
        return [self._queue_changed(chat)]

    def promote(self, chat: Chat, queued: ChatQueuedMessage) -> tuple[ChatMessage, list[Event]]:
        """Move a queued message into the history and run it (the chat must be idle). Spec
        §9.1: the message carries no ``queued_message_id``."""
        self._tx(chat)
        return self._promote(chat, queued)

    def _promote(self, chat: Chat, queued: ChatQueuedMessage) -> tuple[ChatMessage, list[Event]]:
        chat.queue.remove(queued)
        queue = self._queue_changed(chat)
        message, events = self._start(chat, list(queued.content))
        events.insert(1, queue)
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
        self._tx(chat)
        chat.archived = archived
        self._now(chat)

    def interrupting(self, chat: Chat) -> list[Event]:
        """Era d's first half of an interrupt (409 when there is nothing to interrupt)."""
        if not chat.active:
            raise ApiError(409, NOT_INTERRUPTIBLE)
        self._tx(chat)
        return [self._set_status(chat, "interrupting")]

    # ------------------------------------------------------------ changes by a running turn

    def running(self, chat: Chat) -> list[Event]:
        self._tx(chat)
        return [self._set_status(chat, "running")]

    def record_attempt(self, chat: Chat) -> list[Event]:
        """``RecordGenerationAttempt``, before every LLM call and every tool batch: the next
        attempt of the episode (1 after a commit, +1 after a failed one), its own ``preview_reset``
        in a frame of its own (spec §9.2), and whatever the last attempt streamed dropped."""
        self._tx(chat)
        chat.episode.attempt_recorded()
        self._clear_retry(chat)
        self._clear_step(chat)
        if self.era is not Era.D:
            return []
        events = self.events
        return [events.frame_break(), events.preview_reset(chat.id), events.frame_break()]

    def text_part(self, chat: Chat, kind: str, text: str) -> Event:
        (chat.reasoning if kind == "reasoning" else chat.text).append(text)
        chat.delivered.append(text)
        event = self.events.text_part(chat.id, kind, text, chat.episode)
        self._buffer(chat).append(event)
        self._generated(chat, [event])
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
        self._generated(chat, events)
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
            if fault == PART_DROP:
                if numbered:
                    sent.append(mark("seq_gaps"))
                continue
            if fault == PART_REORDER:
                chat.held = (event, text)
                continue
            deliver(event, text)
            if fault == PART_DUPLICATE:
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
        delta = self.tool_call_delta(chat, call_id, name, orjson.dumps(args).decode())
        return delta + self.tool_call_complete(chat, call_id, name, args)

    def tool_call_delta(self, chat: Chat, call_id: str, name: str, args_delta: str) -> list[Event]:
        """Section 10.4, 1: one argument delta of a tool call the LLM is streaming."""
        part = ChatMessagePart(
            type="tool-call", tool_call_id=call_id, tool_name=name, args_delta=args_delta
        )
        out = [self.events.part(chat.id, part, "assistant", chat.episode)]
        self._buffer(chat).extend(out)
        self._generated(chat, out)
        return out

    def tool_call_complete(
        self, chat: Chat, call_id: str, name: str, args: dict[str, Any]
    ) -> list[Event]:
        """Section 10.4, 2: the complete call, kept for the step's commit."""
        complete = ChatMessagePart(
            type="tool-call", tool_call_id=call_id, tool_name=name, args=args
        )
        if self.era is not Era.A:
            complete.created_at = self._now()  # not a field of the seed's ChatMessagePart
        chat.tool_calls.append(complete)
        out = [self.events.part(chat.id, complete, "assistant", chat.episode)]
        self._buffer(chat).extend(out)
        self._generated(chat, out)
        return out

    def finish_step(self, chat: Chat, output_tokens: int | None) -> list[Event]:
        """``CommitStep``: persist the step's assistant message (with ``usage``); the buffer
        is kept until the next step streams."""
        self._tx(chat)
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
        """Era D, spec §9.3: the step ends in a dynamic tool call only the client can run. Its
        ``CommitStep`` (the assistant message holding the call, then ``preview_reset``); the
        caller then runs ``enter_requires_action``, a transaction of its own."""
        chat.tool_calls.append(
            ChatMessagePart(type="tool-call", tool_call_id=call_id, tool_name=name, args=args)
        )
        chat.needs = [
            ChatActionRequiredToolCall(
                tool_call_id=call_id, tool_name=name, args=orjson.dumps(args).decode()
            )
        ]
        return self.finish_step(chat, output_tokens)

    def enter_requires_action(self, chat: Chat) -> list[Event]:
        """``EnterRequiresAction``: ``status`` then ``action_required`` naming the calls; the
        watch gets ``action_required`` with the chat only (spec §9.3: no ``tool_calls``)."""
        self._tx(chat)
        status = self._set_status(chat, "requires_action")
        self._changed(chat, "action_required")
        return [status, self._action_required(chat)]

    def _action_required(self, chat: Chat) -> Event:
        return ChatStreamEvent(
            type="action_required",
            chat_id=chat.id,
            action_required=ChatStreamActionRequired(tool_calls=list(chat.needs)),
        ).wire()

    def tool_results(self, chat: Chat, results: list[ToolResult]) -> list[Event]:
        """``POST /tool-results`` (``CompleteRequiresAction``): checked as
        chatstate/toolresults.go does, then one tool message per result and the chat runs
        on. 409 when the chat waits for none; 400 for a duplicate id or an ``output`` that is
        not JSON (per result, in order), then a pending call left unanswered, then an id not
        pending."""
        if chat.status != "requires_action":
            raise ApiError(409, INVALID_STATE)
        submitted: dict[str, ToolResult] = {}
        for result in results:
            call_id = result.tool_call_id
            if call_id in submitted:
                raise _tool_error(TOOL_RESULT_DUPLICATE, call_id)
            if "output" not in result.model_fields_set:  # Go: an empty RawMessage
                raise _tool_error(TOOL_RESULT_INVALID_JSON, call_id)
            submitted[call_id] = result
        asked = {call.tool_call_id: call for call in chat.needs}
        for call_id in asked:
            if call_id not in submitted:
                raise _tool_error(TOOL_RESULT_MISSING, call_id)
        for call_id in submitted:
            if call_id not in asked:
                raise _tool_error(TOOL_RESULT_UNEXPECTED, call_id)
        return self._answer(
            chat,
            [(asked[r.tool_call_id], r.output, r.is_error) for r in submitted.values()],
        )

    def cancel_requires_action(self, chat: Chat) -> list[Event]:
        """``CancelRequiresAction``, past the deadline: each pending call gets the
        cancellation result (an error) and the chat runs on."""
        return self._answer(chat, [(call, TOOL_CALL_CANCELLED, True) for call in chat.needs])

    def _answer(
        self, chat: Chat, answers: list[tuple[ChatActionRequiredToolCall, Any, bool]]
    ) -> list[Event]:
        self._tx(chat)
        events = []
        for call, output, is_error in answers:
            part = ChatMessagePart(
                type="tool-result",
                tool_call_id=call.tool_call_id,
                tool_name=call.tool_name,
                result=output,
            )
            if is_error:
                part.is_error = True
            events.append(self.events.message(chat.id, self._message(chat, "tool", [part])))
        chat.needs = []
        events.append(self._set_status(chat, "running"))
        return self._committed(chat, events)

    def run_tools(
        self, chat: Chat, results: list[tuple[str, str, Any, bool]]
    ) -> tuple[list[Event], list[Event]]:
        """A batch of tools the server runs, each ``(call id, name, result, is_error)``, in
        the attempt recorded for the batch: (their result parts, streamed as they finish; the
        one ``CommitStep`` of a tool message each, which ends the episode)."""
        streamed = []
        parts = []
        for call_id, name, result, is_error in results:
            part = ChatMessagePart(
                type="tool-result", tool_call_id=call_id, tool_name=name, result=result
            )
            if is_error:
                part.is_error = True
            if self.era is not Era.A:
                part.created_at = self._now()
            parts.append(part)
            streamed.append(self.events.part(chat.id, part, "tool", chat.episode))
        self._buffer(chat).extend(streamed)
        self._generated(chat, streamed)
        chat.buffer_done = True
        self._tx(chat)
        messages = [self.events.message(chat.id, self._message(chat, "tool", [p])) for p in parts]
        return streamed, self._committed(chat, messages)

    def retry(
        self, chat: Chat, attempt: int, delay_ms: int, failure: Failure, at: datetime
    ) -> list[Event]:
        """``RecordRetryState``: the ``retry`` notice alone; the next attempt's
        ``preview_reset`` comes when it is recorded, after the backoff (spec §9.2)."""
        self._tx(chat)
        event = self.events.retry(chat.id, attempt, delay_ms, failure, at)
        chat.retry_event = event
        chat.episode.retry = chat.episode.snapshot
        return [event]

    def fail(self, chat: Chat, failure: Failure) -> list[Event]:
        """``FinishError``: era D's sync writes the status, then the error (spec §9.3's
        order); eras A-C the error first."""
        self._tx(chat)
        chat.last_error = failure
        self._clear_retry(chat)
        self._clear_step(chat)
        error, status = self.events.error(chat.id, failure), self._set_status(chat, "error")
        return [status, error] if self.era is Era.D else [error, status]

    def finish_turn(self, chat: Chat, promote: bool = True) -> tuple[list[Event], bool]:
        """``FinishTurn``: promote the queue head (no ``waiting`` between) or wait."""
        self._tx(chat)
        self._clear_retry(chat)
        chat.needs = []
        if promote and chat.queue:
            head = chat.queue[0]
            return self._promote(chat, head)[1], True
        chat.buffer_until = self._clock() + BUFFER_GRACE
        return [self._set_status(chat, "waiting")], False

    def interrupted(self, chat: Chat, promote: bool = True) -> tuple[list[Event], bool]:
        """A cancelled run: persist what the step had streamed, then end the turn."""
        events: list[Event] = []
        if chat.text or chat.reasoning or chat.tool_calls:
            events += self.finish_step(chat, None)
        more, promoted = self.finish_turn(chat, promote)
        return events + more, promoted

    # ------------------------------------------------------------ replicas

    def restore(
        self,
        chat_id: str,
        owner_id: str,
        title: str,
        model_config_id: str,
        messages: list[ChatMessage],
        versions: tuple[int, int, int, int, int],
    ) -> Chat:
        """A chat taken over from a dead replica, rebuilt from its committed history and its
        row's versions (snapshot, history, attempt, queue, retry): ids continue above its
        last message, and its next transaction continues the row's numbering."""
        chat = Chat(owner_id, title, model_config_id, self._clock())
        chat.id = chat_id
        chat.messages = messages
        self._message_id = max([self._message_id, *(m.id for m in messages)])
        episode = chat.episode
        episode.snapshot, episode.history, episode.attempt, episode.queue, episode.retry = versions
        chat.queue_changed = episode.queue > 0
        self.chats[chat_id] = chat
        return chat

    def taken_over(self, chat: Chat) -> list[Event]:
        """A chat recovered from a dead replica runs its turn again here (``Acquire``; its
        next attempt is recorded when it calls the LLM)."""
        self._tx(chat)
        self._clear_step(chat)
        chat.status = ""
        return [self._set_status(chat, self._run_status())]

    # ------------------------------------------------------------ the stream's snapshot

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


def _tool_error(words: tuple[str, str], call_id: str) -> ApiError:
    message, detail = words
    return ApiError(400, message, detail.format(id=go_quote(call_id)))
