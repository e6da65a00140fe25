"""The changes a running turn makes to its chat, transaction by transaction: pure.

Steps' parts (with integrity faults played), tool calls, ``requires_action`` and the client's
tool results, retries, failures, the turn's end, and a replica's takeover; the player
(``player.py``) calls these in time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from loadtest.protocol.constants import (
    INVALID_STATE,
    TOOL_CALL_CANCELLED,
    TOOL_RESULT_DUPLICATE,
    TOOL_RESULT_INVALID_JSON,
    TOOL_RESULT_MISSING,
    TOOL_RESULT_UNEXPECTED,
    go_quote,
)
from loadtest.protocol.eras import Era
from loadtest.protocol.events import ACTION_REQUIRED
from loadtest.protocol.models import (
    ChatActionRequiredToolCall,
    ChatMessage,
    ChatMessagePart,
    ChatMessageUsage,
    ChatStreamActionRequired,
    ChatStreamEvent,
    ToolResult,
)
from loadtest.sim.chat_state import BUFFER_GRACE, ChatLedger, ChatState
from loadtest.sim.errors import ApiError
from loadtest.sim.events import Event, Failure, mark
from loadtest.sim.faults import PART_DROP, PART_DUPLICATE, PART_REORDER


class ChatTurns(ChatLedger):
    """A chat's changes by its running turn."""

    def running(self, chat: ChatState) -> list[Event]:
        self._tx(chat)
        return [self._set_status(chat, "running")]

    def record_attempt(self, chat: ChatState) -> list[Event]:
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

    def text_part(self, chat: ChatState, kind: str, text: str) -> Event:
        (chat.reasoning if kind == "reasoning" else chat.text).append(text)
        chat.delivered.append(text)
        event = self.events.text_part(chat.id, kind, text, chat.episode)
        self._buffer(chat).append(event)
        self._generated(chat, [event])
        return event

    def text_parts(
        self,
        chat: ChatState,
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
        chat: ChatState,
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

    def tool_call(
        self, chat: ChatState, call_id: str, name: str, args: dict[str, Any]
    ) -> list[Event]:
        """A streamed tool call: its arguments as a delta, then the complete call."""
        delta = self.tool_call_delta(chat, call_id, name, orjson.dumps(args).decode())
        return delta + self.tool_call_complete(chat, call_id, name, args)

    def tool_call_delta(
        self, chat: ChatState, call_id: str, name: str, args_delta: str
    ) -> list[Event]:
        """Section 10.4, 1: one argument delta of a tool call the LLM is streaming."""
        part = ChatMessagePart(
            type="tool-call", tool_call_id=call_id, tool_name=name, args_delta=args_delta
        )
        out = [self.events.part(chat.id, part, "assistant", chat.episode)]
        self._buffer(chat).extend(out)
        self._generated(chat, out)
        return out

    def tool_call_complete(
        self, chat: ChatState, call_id: str, name: str, args: dict[str, Any]
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

    def finish_step(self, chat: ChatState, output_tokens: int | None) -> list[Event]:
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
        self,
        chat: ChatState,
        call_id: str,
        name: str,
        args: dict[str, Any],
        output_tokens: int | None,
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

    def enter_requires_action(self, chat: ChatState) -> list[Event]:
        """``EnterRequiresAction``: ``status`` then ``action_required`` naming the calls; the
        watch gets ``action_required`` with the chat only (spec §9.3: no ``tool_calls``)."""
        self._tx(chat)
        status = self._set_status(chat, "requires_action")
        self._changed(chat, ACTION_REQUIRED)
        return [status, self._action_required(chat)]

    def _action_required(self, chat: ChatState) -> Event:
        return ChatStreamEvent(
            type=ACTION_REQUIRED,
            chat_id=chat.id,
            action_required=ChatStreamActionRequired(tool_calls=list(chat.needs)),
        ).wire()

    def tool_results(self, chat: ChatState, results: list[ToolResult]) -> list[Event]:
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

    def cancel_requires_action(self, chat: ChatState) -> list[Event]:
        """``CancelRequiresAction``, past the deadline: each pending call gets the
        cancellation result (an error) and the chat runs on."""
        return self._answer(chat, [(call, TOOL_CALL_CANCELLED, True) for call in chat.needs])

    def _answer(
        self, chat: ChatState, answers: list[tuple[ChatActionRequiredToolCall, Any, bool]]
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
        self, chat: ChatState, results: list[tuple[str, str, Any, bool]]
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
        self, chat: ChatState, attempt: int, delay_ms: int, failure: Failure, at: datetime
    ) -> list[Event]:
        """``RecordRetryState``: the ``retry`` notice alone; the next attempt's
        ``preview_reset`` comes when it is recorded, after the backoff (spec §9.2)."""
        self._tx(chat)
        event = self.events.retry(chat.id, attempt, delay_ms, failure, at)
        chat.retry_event = event
        chat.episode.retry = chat.episode.snapshot
        return [event]

    def fail(self, chat: ChatState, failure: Failure) -> list[Event]:
        """``FinishError``: era D's sync writes the status, then the error (spec §9.3's
        order); eras A-C the error first."""
        self._tx(chat)
        chat.last_error = failure
        self._clear_retry(chat)
        self._clear_step(chat)
        error, status = self.events.error(chat.id, failure), self._set_status(chat, "error")
        return [status, error] if self.era is Era.D else [error, status]

    def finish_turn(self, chat: ChatState, promote: bool = True) -> tuple[list[Event], bool]:
        """``FinishTurn``: promote the queue head (no ``waiting`` between) or wait."""
        self._tx(chat)
        self._clear_retry(chat)
        chat.needs = []
        if promote and chat.queue:
            head = chat.queue[0]
            return self._promote(chat, head)[1], True
        chat.buffer_until = self._clock() + BUFFER_GRACE
        return [self._set_status(chat, "waiting")], False

    def interrupted(self, chat: ChatState, promote: bool = True) -> tuple[list[Event], bool]:
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
    ) -> ChatState:
        """A chat taken over from a dead replica, rebuilt from its committed history and its
        row's versions (snapshot, history, attempt, queue, retry): ids continue above its
        last message, and its next transaction continues the row's numbering."""
        chat = ChatState(owner_id, title, model_config_id, self._clock())
        chat.id = chat_id
        chat.messages = messages
        self._message_id = max([self._message_id, *(m.id for m in messages)])
        episode = chat.episode
        episode.snapshot, episode.history, episode.attempt, episode.queue, episode.retry = versions
        chat.queue_changed = episode.queue > 0
        self.chats[chat_id] = chat
        return chat

    def taken_over(self, chat: ChatState) -> list[Event]:
        """A chat recovered from a dead replica runs its turn again here (``Acquire``; its
        next attempt is recorded when it calls the LLM)."""
        self._tx(chat)
        self._clear_step(chat)
        chat.status = ""
        return [self._set_status(chat, self._run_status())]


def _tool_error(words: tuple[str, str], call_id: str) -> ApiError:
    message, detail = words
    return ApiError(400, message, detail.format(id=go_quote(call_id)))
