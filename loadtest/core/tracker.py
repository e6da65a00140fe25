"""One chat's turns: a state machine fed stream events and times, giving latencies out.

Shaped like h11: the caller tells it what happened (``start`` a turn before the POST that
carries it, ``feed`` the events of each frame with the frame's receive time, ``fail`` when the
transport breaks, ``expire`` on a timeout) and it answers with the turns that ended. It reads
no clock and does no I/O; every figure goes to the ``Recorder`` it was given.

Attribution, as ``docs/metrics.md`` defines a turn:
- the *active* turn owns live events; turns posted while it runs wait in a FIFO (the server
  queued them) and become active, in order, when the chat promotes them;
- a user ``message`` starts the active turn's server-side life; a second user message while
  the active turn is under way is a queue promotion, which ends the active turn;
- a terminal ``status`` ends the active turn (``error`` as a failure);
- snapshot events (the frames sent on connect) never count as output, but still tell the
  tracker which messages exist and whether the active turn ended while it was not looking;
- message ids only move forward, so a reconnect's snapshot is never counted twice;
- every field it reads is checked for its type first: a wrong one is a ``decode`` error
  recorded with the field's name, never an exception (the reader must outlive bad servers);
- integrity (``docs/metrics.md``): era-D parts must number 1, 2, 3 ... within their
  (history_version, generation_attempt) episode, and the text (and reasoning) deltas of a
  step must add up (length and CRC-32, never the text itself) to the committed message that
  closes it (era D: or to a prefix of it, a preview the commit cut short). A step is only compared when this connection saw it from its start: live, or replayed whole by an
  era-D snapshot (after its ``preview_reset``); eras A-C replay a step in progress only in
  part, so such a step is skipped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol
from zlib import crc32

import orjson

from loadtest.core.decode import STREAM_ERROR_KEY
from loadtest.core.replicas import ReplicaTally
from loadtest.core.steps import ChatSteps
from loadtest.core.turn import ErrorInfo, Outcome, Turn
from loadtest.protocol.constants import BATCH_SIZE
from loadtest.protocol.models import TERMINAL_STATUSES


class TurnRecorder(Protocol):
    """The seam between the tracker and what measures its turns (``core.recorder.Recorder``
    in a run; anything with these methods in a test)."""

    def turn_started(self, turn: Turn) -> None: ...
    def turn_ended(self, turn: Turn) -> None: ...
    def part_frame(self, turn: Turn, parts: int, t: int) -> None: ...
    def orphan_parts(self, n: int) -> None: ...
    def snapshot_events(self, n: int) -> None: ...
    def queue_length(self, length: int) -> None: ...
    def queue_wait(self, ns: int) -> None: ...
    def retry_event(self, delay_ms: int | None, kind: str | None, t: int) -> None: ...
    def error_event(self) -> None: ...
    def error(self, info: ErrorInfo, t: int) -> None: ...
    def decode_error(self, reason: str, t: int) -> None: ...
    def preview_reset(self) -> None: ...
    def parts_discarded(self, n: int) -> None: ...
    def conversation(self, ns: int) -> None: ...
    def integrity(self, name: str, n: int) -> None: ...
    def message_update(self) -> None: ...


#: Statuses that end a turn: ``requires_action`` only pauses it until the client answers.
ENDS_A_TURN: Final = TERMINAL_STATUSES - {"requires_action"}

#: Coder sends a snapshot in chunks of at most this many events (its frame limit).
SNAPSHOT_CHUNK: Final = BATCH_SIZE

#: What ``feed`` returns for a frame that ended no turn.
NO_TURNS: Final[tuple[Turn, ...]] = ()

#: Token counts above this are not believed (and would not fit the report's integers).
MAX_OUTPUT_TOKENS: Final = 1 << 31

#: A seq jump wider than this is counted as gaps at once instead of remembering each
#: missing number (a bogus seq must not cost memory).
MAX_MISSING: Final = 4096


class TurnTracker:
    """The turns of one chat, seen through one stream connection at a time."""

    __slots__ = (
        "_active",
        "_episode",
        "_episode_parts",
        "_episodes",
        "_finished",
        "_in_snapshot",
        "_last_seq",
        "_missing",
        "_on_ended",
        "_on_status",
        "_queued",
        "_recorder",
        "_seen",
        "_snapshot_parts",
        "_step_broken",
        "_text_crc",
        "_text_known",
        "_text_length",
        "conversation_end",
        "conversation_start",
        "max_message_id",
        "message_ids",
        "replica_tally",
        "steps",
    )

    def __init__(
        self,
        recorder: TurnRecorder,
        on_ended: Callable[[Turn], object] | None = None,
        on_status: Callable[[str, int], object] | None = None,
    ) -> None:
        """``on_ended`` hears of every turn that ends, however it ends, after the recorder;
        ``on_status`` of every live status event (its status and arrival)."""
        self._recorder = recorder
        self._on_ended = on_ended
        self._on_status = on_status
        self._active: Turn | None = None
        self._queued: deque[Turn] = deque()
        self._in_snapshot = False
        #: Live parts on this connection since the last commit or preview_reset (era D).
        self._episode_parts = 0
        #: Era D: the episode (history_version, generation_attempt) parts now belong to, the
        #: highest seq seen in it, and the seqs skipped that may still come (out of order).
        self._episode: tuple[int, int] | None = None
        #: The episode a commit or preview_reset ended: no part of it (or before) may follow.
        self._finished: tuple[int, int] | None = None
        self._last_seq = 0
        self._missing: set[int] = set()
        #: The current step's text so far: whether it was seen from its start, its length
        #: and running CRC-32.
        self._text_known = False
        #: The step's text so far is counted in UTF-8 bytes, with its running CRC-32.
        self._text_length = 0
        self._text_crc = 0
        #: Whether this stream speaks era D's episodes (a preview_reset was seen), and
        #: whether the step's parts broke their numbering (then a short text is a loss).
        self._episodes = False
        self._step_broken = False
        self._snapshot_parts = 0
        #: A fingerprint of each message seen (CRC-32 of its JSON): Coder re-sends a message
        #: whose row changed, with no revision on the wire (spec §9.1), so a re-sent one is an
        #: update only when it reads differently; the same again is a duplicate.
        self._seen: dict[int, int] = {}
        self.max_message_id = 0
        #: Every committed message id this chat's stream received, live or in a snapshot.
        self.message_ids: set[int] = set()
        #: The tally of the replica its stream reads now (several replicas only).
        self.replica_tally: ReplicaTally | None = None
        self.conversation_start: int | None = None
        self.conversation_end: int | None = None
        #: Its agent turns' steps, tools and sub-agents (``core/steps.py``).
        self.steps = ChatSteps()

    # ------------------------------------------------------------ what the caller reports

    @property
    def active(self) -> Turn | None:
        return self._active

    @property
    def busy(self) -> bool:
        """True while a turn of this chat is in flight or waiting in the queue."""
        return self._active is not None or bool(self._queued)

    @property
    def after_id(self) -> int | None:
        """The ``after_id`` a reconnect should send, so the snapshot holds only new messages."""
        return self.max_message_id or None

    def start(self, t0: int, intended: int | None = None) -> Turn:
        """A turn begins: call just before writing the POST that carries its message."""
        turn = Turn(t0=t0, intended=intended)
        if self._active is None:
            self._active = turn
        else:
            turn.queued = True
            self._queued.append(turn)
        if self.conversation_start is None:
            self.conversation_start = turn.origin
        self._recorder.turn_started(turn)
        return turn

    def connected(self) -> None:
        """A stream connection opened: the next frame (or 256-event frames) is its snapshot."""
        self._in_snapshot = True
        self._episode_parts = 0
        self._close_episode(self._active)
        self._episode = self._finished = None
        self._text_known = False
        self._snapshot_parts = 0

    def interrupt_requested(self) -> None:
        if self._active is not None:
            self._active.interrupted = True

    def feed(self, events: list[dict[str, Any]], t: int) -> Sequence[Turn]:
        """The events of one frame received at ``t``; returns the turns that ended."""
        if self._in_snapshot:
            ended: list[Turn] = []
            self._feed_snapshot(events, t, ended)
            self._in_snapshot = len(events) >= SNAPSHOT_CHUNK
            return ended
        for event in events:
            if event["type"] != "message_part":
                return self._feed_mixed(events, t)
        # Only output: the frame nearly every frame is, handled without a handler call.
        parts = len(events)
        self._episode_parts += parts
        turn = self._active
        self._check_parts(events, turn, t)
        if turn is None:
            self._recorder.orphan_parts(parts)
        elif parts:
            if turn.first_output_at is None:
                turn.first_output_at = t
            if turn.episode_first_at is None:
                turn.episode_first_at = t
            self._recorder.part_frame(turn, parts, t)
            turn.parts += parts
            turn.last_part_frame_at = t
        return NO_TURNS

    def _feed_mixed(self, events: list[dict[str, Any]], t: int) -> list[Turn]:
        """A frame with something besides output: each event in order."""
        ended: list[Turn] = []
        turn = self._active
        parts = 0
        start = 0
        taken = -1  # an error event already taken with the status before it
        for index, event in enumerate(events):
            kind = event["type"]
            if kind == "message_part":
                if not parts:
                    start = index
                parts += 1
                continue
            if parts:
                self._check_parts(events[start:index], turn, t)
                self._parts(turn, parts, t)
                parts = 0
            if kind == "status":
                follows = _error_after(events, index)
                if follows is not None:
                    # Era D's sync writes the status, then the error it ended with (spec §9.3):
                    # the error belongs to the turn that status ends, so it is taken first.
                    self._error(events[follows], t)
                    taken = follows
                self._status(event, t, ended, live=True)
            elif kind == "message":
                self._message(event, t, ended, live=True)
            elif kind == "retry":
                self._retry(event, turn, t)
                self._new_step(turn)  # the server starts the step again
            elif kind == "error":
                if index != taken:
                    self._error(event, t)
            elif kind == "queue_update":
                self._queue_update(event, t)
            elif kind == "preview_reset":
                self._preview_reset(turn)
            elif kind == "action_required":
                self._action_required(event, turn, t, live=True)
            elif kind == "history_reset":
                self._seen.clear()  # the history follows again: a new baseline, no updates
            turn = self._active
        if parts:
            self._check_parts(events[start:], turn, t)
            self._parts(turn, parts, t)
        return ended

    def fail(self, info: ErrorInfo, t: int) -> list[Turn]:
        """The transport gave up on this chat: every turn in flight or queued fails."""
        ended: list[Turn] = []
        for turn in self._take_all():
            turn.error = info
            self._end(turn, t, "failed", ended, live=False)
        return ended

    def reject(self, turn: Turn, info: ErrorInfo, t: int) -> list[Turn]:
        """The request that carried ``turn`` failed: it alone fails, wherever it waits."""
        ended: list[Turn] = []
        if turn is self._active:
            turn.error = info
            self._end(turn, t, "failed", ended, live=False)
            self._advance_queue()
        elif turn in self._queued:
            self._queued.remove(turn)
            turn.error = info
            self._end(turn, t, "failed", ended, live=False)
        return ended

    def expire(self, now: int, timeout_ns: int) -> list[Turn]:
        """Fail the active turn with stage ``timeout`` if it started over ``timeout_ns`` ago."""
        turn = self._active
        if turn is None or now - turn.t0 < timeout_ns:
            return []
        ended: list[Turn] = []
        turn.error = ErrorInfo("timeout", f"no terminal status within {timeout_ns / 1e9:g} s")
        self._end(turn, now, "failed", ended, live=False)
        self._advance_queue()
        return ended

    def abandon(self, t: int) -> list[Turn]:
        """The run is over: turns still in flight are counted as unfinished."""
        ended: list[Turn] = []
        for turn in self._take_all():
            self._end(turn, t, "unfinished", ended, live=False)
        return ended

    def finish_conversation(self) -> None:
        """The chat is done: record its duration (first turn's start to last terminal)."""
        if self.conversation_start is not None and self.conversation_end is not None:
            self._recorder.conversation(self.conversation_end - self.conversation_start)

    # ------------------------------------------------------------ event handlers

    def _feed_snapshot(self, events: list[dict[str, Any]], t: int, ended: list[Turn]) -> None:
        """Messages first, then the status: servers differ in the snapshot's order."""
        self._recorder.snapshot_events(len(events))
        for index, event in enumerate(events):
            kind = event["type"]
            if kind == "message_part":
                # Era D replays the current episode whole after its preview_reset: checked
                # as if live. Eras A-C replay only a buffer: the step is not checked.
                self._snapshot_parts += 1
                if self._text_known:
                    self._check_parts(events[index : index + 1], self._active, t)
            elif kind == "preview_reset":
                self._episodes = True
                self._new_step(None)
            elif kind == "message":
                self._message(event, t, ended, live=False)
            elif kind == "queue_update":
                self._queue_update(event, t)
            elif kind == "action_required":
                self._action_required(event, self._active, t, live=False)
            elif kind == "error" and event.get(STREAM_ERROR_KEY):
                # Era A: the server refused the stream with an error envelope for a first
                # frame (then closes). It is no snapshot: keep it, with its message.
                self._recorder.error_event()
                self._recorder.error(ErrorInfo.from_payload("stream_open", event.get("error")), t)
        for event in events:
            if event["type"] == "status":
                self._status(event, t, ended, live=False)
        if len(events) < SNAPSHOT_CHUNK and not self._snapshot_parts:
            # Nothing of a step in progress was replayed: the next step is seen whole.
            self._new_step(None)

    def _parts(self, turn: Turn | None, parts: int, t: int) -> None:
        self._episode_parts += parts
        if turn is None:
            self._recorder.orphan_parts(parts)
            return
        if turn.first_output_at is None:
            turn.first_output_at = t
        if turn.episode_first_at is None:
            turn.episode_first_at = t
        self._recorder.part_frame(turn, parts, t)
        turn.parts += parts
        turn.last_part_frame_at = t

    def _preview_reset(self, turn: Turn | None) -> None:
        """Era D: the parts streamed since the last commit are thrown away (a retry, or a new
        step after a commit: then there are none)."""
        self._recorder.preview_reset()
        self._episodes = True
        self._new_step(turn)
        discarded, self._episode_parts = self._episode_parts, 0
        if discarded:
            self._recorder.parts_discarded(discarded)
        if turn is not None:
            turn.parts_discarded += discarded
            turn.episode_first_at = None

    def _commit(self, turn: Turn | None, message: dict[str, Any]) -> None:
        """A committed message keeps the episode's parts: its first is the first kept output.
        An assistant message closes its step: its text must be what the deltas added up to."""
        self._episode_parts = 0
        if self._text_known and message.get("role") == "assistant":
            self._compare_text(turn, message)
        self._new_step(turn)
        if turn is None:
            return
        if turn.first_kept_output_at is None and turn.episode_first_at is not None:
            turn.first_kept_output_at = turn.episode_first_at
        turn.episode_first_at = None

    # ------------------------------------------------------------ integrity

    def _check_parts(self, parts: list[dict[str, Any]], turn: Turn | None, t: int) -> None:
        """Era-D numbering and the step's running text, for a run of ``message_part``s.

        The common case (well-formed parts, numbered in order or not at all) is a few list
        comprehensions and one CRC per frame; anything else goes part by part."""
        if len(parts) == 1:
            self._check_part(parts, turn, t)
            return
        if not parts:
            return
        try:
            texts = [event["message_part"]["part"].get("text") for event in parts]
            numbered = parts[-1]["message_part"].get("seq") is not None
        except (KeyError, TypeError, AttributeError):
            self._check_each(parts, turn, t)
            return
        try:
            text: str | None = "".join(texts)
        except TypeError:  # parts without text (tool calls and results) among them, or a bad one
            text = None
        if (text is None or self.steps.waiting) and turn is not None:
            self.steps.parts(parts, turn, t)  # (these parts are always live)
        if numbered and not self._in_order([event["message_part"] for event in parts], turn):
            self._check_each(parts, turn, t)
            return
        if self._text_known:
            if text is None:
                if any(text is not None and type(text) is not str for text in texts):
                    self._check_each(parts, turn, t, numbered=False)
                    return
                text = "".join(filter(None, texts))
            data = text.encode()
            self._text_length += len(data)
            self._text_crc = crc32(data, self._text_crc)

    def _check_part(self, parts: list[dict[str, Any]], turn: Turn | None, t: int) -> None:
        """``_check_parts`` of a frame with one part: the same, with nothing to join."""
        try:
            body = parts[0]["message_part"]
            text = body["part"].get("text")
            seq = body.get("seq")
        except (KeyError, TypeError, AttributeError):
            self._check_each(parts, turn, t)
            return
        if (text is None or self.steps.waiting) and turn is not None and not self._in_snapshot:
            self.steps.parts(parts, turn, t)
        if seq is not None and not self._in_order([body], turn):
            self._check_each(parts, turn, t)
            return
        if self._text_known and text is not None:
            if type(text) is not str:
                self._check_each(parts, turn, t, numbered=False)
                return
            data = text.encode()
            self._text_length += len(data)
            self._text_crc = crc32(data, self._text_crc)

    def _in_order(self, bodies: list[dict[str, Any]], turn: Turn | None) -> bool:
        """True, and noted, when era-D parts continue their episode exactly; False for the
        part-by-part check (a new episode, a break, or a malformed part)."""
        last, episode, finished = self._last_seq, self._episode, self._finished
        if episode is None or (finished is not None and episode <= finished):
            return False
        seqs = [body.get("seq") for body in bodies]
        if seqs != list(range(last + 1, last + 1 + len(seqs))):
            return False
        if {(b.get("history_version"), b.get("generation_attempt")) for b in bodies} != {episode}:
            return False
        self._last_seq = seqs[-1]
        if turn is not None:
            turn.checked = True
        return True

    def _check_each(
        self, parts: list[dict[str, Any]], turn: Turn | None, t: int, numbered: bool = True
    ) -> None:
        """``_check_parts`` one part at a time, each field's type checked."""
        known = self._text_known
        length, crc = self._text_length, self._text_crc
        for event in parts:
            body = event.get("message_part")
            if type(body) is not dict:
                self._malformed("message_part.message_part", "an object", body, t)
                continue
            seq = body.get("seq")
            if numbered and seq is not None and not self._numbered(body, seq, turn, t):
                continue  # a duplicate, or a part of an episode that is over
            if known:
                part = body.get("part")
                text = part.get("text") if type(part) is dict else None
                if type(text) is str:
                    data = text.encode()
                    length += len(data)
                    crc = crc32(data, crc)
        self._text_length, self._text_crc = length, crc

    def _numbered(self, body: dict[str, Any], seq: Any, turn: Turn | None, t: int) -> bool:
        """Check an era-D part's place; False for one whose text must not count again."""
        history, attempt = body.get("history_version"), body.get("generation_attempt")
        if type(seq) is not int or type(history) is not int or type(attempt) is not int:
            self._malformed("message_part.seq", "integer seq and episode", seq, t)
            return True
        if turn is not None:
            turn.checked = True
        episode = (history, attempt)
        current = self._episode
        finished = self._finished
        if finished is not None and episode <= finished:
            self._integrity("seq_out_of_order", 1, turn)  # a part of an episode that ended
            return False
        if episode != current:
            if current is not None and episode < current:
                self._integrity("seq_out_of_order", 1, turn)  # a part of an earlier episode
                return False
            self._close_episode(turn)
            self._episode = episode
            self._last_seq = 0
        last = self._last_seq
        if seq == last + 1:
            self._last_seq = seq
            return True
        if seq > last:
            skipped = seq - last - 1
            if skipped > MAX_MISSING:
                self._integrity("seq_gaps", skipped, turn)
            else:
                self._missing.update(range(last + 1, seq))
            self._last_seq = seq
            return True
        if seq in self._missing:
            self._missing.discard(seq)
            self._integrity("seq_out_of_order", 1, turn)
            return True
        self._integrity("seq_duplicates", 1, turn)
        return False

    def _close_episode(self, turn: Turn | None) -> None:
        """The episode is over: the seqs it skipped that never came are gaps."""
        if self._missing:
            self._integrity("seq_gaps", len(self._missing), turn)
            self._missing.clear()

    def _new_step(self, turn: Turn | None) -> None:
        """A step boundary seen: what follows is a step seen from its start."""
        self._close_episode(turn)
        if self._episode is not None:
            self._finished = self._episode
        self._text_known = True
        self._text_length = 0
        self._text_crc = 0
        self._step_broken = False

    def _compare_text(self, turn: Turn | None, message: dict[str, Any]) -> None:
        """The committed text (its text and reasoning parts, in order) against the deltas.
        Era D: deltas that are a prefix of it are a preview cut short, not a mismatch (Coder's
        stream loop rejects an episode's parts once the commit's Sync is past it, so a
        relay that lags shows less of the step, never other text)."""
        content = message.get("content")
        texts = []
        if type(content) is list:
            for part in content:
                text = part.get("text") if type(part) is dict else None
                if type(text) is str:
                    texts.append(text)
        committed = "".join(texts).encode()
        crc = crc32(committed)
        if turn is not None:
            turn.checked = True
        if len(committed) == self._text_length and crc == self._text_crc:
            return
        whole = self._episodes and not (self._step_broken or self._missing)
        short = self._text_length < len(committed)
        if whole and short and crc32(committed[: self._text_length]) == self._text_crc:
            return
        self._integrity("content_mismatches", 1, turn)

    def _integrity(self, name: str, n: int, turn: Turn | None) -> None:
        self._step_broken = True
        self._recorder.integrity(name, n)
        if self.replica_tally is not None:
            self.replica_tally.integrity_break(name, n)
        if turn is not None:
            turn.integrity_errors[name] = turn.integrity_errors.get(name, 0) + n

    def _malformed(self, field: str, expected: str, value: Any, t: int) -> None:
        """A field of the wrong type: a decode error naming the field; the event is skipped."""
        self._recorder.decode_error(f"{field}: expected {expected}, got {_json_type(value)}", t)

    def _queue_update(self, event: dict[str, Any], t: int) -> None:
        queued = event.get("queued_messages")
        if queued is None:
            queued = ()
        elif type(queued) is not list:
            self._malformed("queue_update.queued_messages", "an array", queued, t)
            return
        self._recorder.queue_length(len(queued))

    def _message(self, event: dict[str, Any], t: int, ended: list[Turn], live: bool) -> None:
        message = event.get("message")
        if type(message) is not dict:
            self._malformed("message.message", "an object", message, t)
            return
        message_id = message.get("id")
        role = message.get("role")
        usage = message.get("usage")
        if message_id is not None and type(message_id) is not int:
            self._malformed("message.message.id", "an integer", message_id, t)
            return
        if role is not None and type(role) is not str:
            self._malformed("message.message.role", "a string", role, t)
            return
        if usage is not None and type(usage) is not dict:
            self._malformed("message.message.usage", "an object", usage, t)
            return
        if message_id is not None:
            self.message_ids.add(message_id)
            fingerprint = _fingerprint(message)
            seen = self._seen.get(message_id)
            self._seen[message_id] = fingerprint
            if seen is not None:
                if live and seen != fingerprint:
                    self._recorder.message_update()  # its row changed; a copy is ignored
                return
            if message_id <= self.max_message_id:
                return
            self.max_message_id = message_id
        turn = self._active
        if turn is not None:
            self.steps.message(turn, role, message.get("content"), t, live)
        if live:
            self._commit(turn, message)
        if turn is None:
            return
        if role == "user":
            if not turn.user_seen:
                self._user_seen(turn, t, live)
            else:
                # The server promoted the next queued message: the active turn is over.
                self._end(turn, t, "promoted", ended, live=live)
                self._advance_queue()
                if self._active is not None:
                    self._user_seen(self._active, t, live)
        elif role == "assistant" and usage is not None:
            tokens = usage.get("output_tokens")
            if tokens is None:
                return
            if type(tokens) is not int or not 0 <= tokens < MAX_OUTPUT_TOKENS:
                self._malformed("message.message.usage.output_tokens", "a count", tokens, t)
                return
            turn.output_tokens += tokens

    def _user_seen(self, turn: Turn, t: int, live: bool) -> None:
        turn.user_seen = True
        if live and turn.queued:
            self._recorder.queue_wait(t - turn.t0)

    def _status(self, event: dict[str, Any], t: int, ended: list[Turn], live: bool) -> None:
        payload = event.get("status")
        if type(payload) is not dict:
            self._malformed("status.status", "an object", payload, t)
            return
        status = payload.get("status")
        if type(status) is not str:
            self._malformed("status.status.status", "a string", status, t)
            return
        if live and self._on_status is not None:
            self._on_status(status, t)
        turn = self._active
        if turn is None:
            return
        if status == "running":
            # Live, or in the connect snapshot of a turn that started before this connection
            # (a chat's first turn: created, then streamed): then it is when the client could
            # first see it running, an upper bound of the true time.
            if turn.running_at is None:
                turn.running_at = t
            return
        if status not in ENDS_A_TURN or not (turn.user_seen or turn.running_at):
            return
        turn.status = status
        outcome: Outcome
        if status == "error":
            if turn.error is None:
                turn.error = ErrorInfo("status_error", "chat ended in status error", "generic")
            outcome = "failed"
        else:
            outcome = "interrupted" if turn.interrupted else "completed"
        self._end(turn, t, outcome, ended, live=live)
        self._advance_queue()

    def _action_required(
        self, event: dict[str, Any], turn: Turn | None, t: int, live: bool
    ) -> None:
        """Era D: the turn waits for tools only the client runs; their ids are kept for the
        driver to answer (a snapshot's too: a late stream must still answer)."""
        body = event.get("action_required")
        calls = body.get("tool_calls") if type(body) is dict else None
        if type(calls) is not list:
            self._malformed("action_required.tool_calls", "an array", calls, t)
            return
        ids = [c.get("tool_call_id") for c in calls if type(c) is dict]
        named = [i for i in ids if type(i) is str]
        if not named or len(named) != len(calls):
            self._malformed("action_required.tool_calls[].tool_call_id", "strings", ids, t)
            return
        if turn is None:
            return
        if live and turn.action_required_at is None:
            turn.action_required_at = t
        turn.tool_calls = named

    def _retry(self, event: dict[str, Any], turn: Turn | None, t: int) -> None:
        retry = event.get("retry")
        if type(retry) is not dict:
            self._malformed("retry.retry", "an object", retry, t)
            return
        delay = retry.get("delay_ms")
        if delay is not None and (type(delay) is not int or delay < 0):
            self._malformed("retry.retry.delay_ms", "milliseconds >= 0", delay, t)
            delay = None
        kind = retry.get("kind")
        if kind is not None and type(kind) is not str:
            self._malformed("retry.retry.kind", "a string", kind, t)
            kind = None
        self._recorder.retry_event(delay, kind, t)
        if turn is not None:
            turn.retries += 1

    def _error(self, event: dict[str, Any], t: int) -> None:
        self._recorder.error_event()
        stream_failure = bool(event.get(STREAM_ERROR_KEY))
        info = ErrorInfo.from_payload(
            "stream_event" if stream_failure else "status_error", event.get("error")
        )
        turn = self._active
        if turn is None or stream_failure:
            self._recorder.error(info, t)
        else:
            turn.error = info

    # ------------------------------------------------------------ bookkeeping

    def _end(self, turn: Turn, t: int, outcome: Outcome, ended: list[Turn], live: bool) -> None:
        if turn is self._active:
            self._close_episode(turn)
        if turn is self._active or self._active is None:
            self.steps.turn_ended()
        if turn.integrity_errors and outcome not in ("failed", "unfinished"):
            found = ", ".join(f"{n} {name}" for name, n in sorted(turn.integrity_errors.items()))
            turn.error = ErrorInfo("integrity", f"stream integrity: {found}")
            outcome = "failed"
        if outcome not in ("failed", "unfinished") and turn.episode_first_at is not None:
            # What the server finished with was kept (no commit event in eras A-C).
            turn.first_kept_output_at = turn.first_kept_output_at or turn.episode_first_at
        turn.terminal_at = t
        turn.terminal_live = live
        turn.outcome = outcome
        if outcome != "unfinished":
            self.conversation_end = t
        self._recorder.turn_ended(turn)
        if self._on_ended is not None:
            self._on_ended(turn)
        ended.append(turn)
        if self._active is turn:
            self._active = None

    def _advance_queue(self) -> None:
        if self._active is None and self._queued:
            self._active = self._queued.popleft()

    def _take_all(self) -> list[Turn]:
        turns = ([self._active] if self._active is not None else []) + list(self._queued)
        self._active = None
        self._queued.clear()
        return turns


def _error_after(events: list[dict[str, Any]], index: int) -> int | None:
    """The index of an ``error`` event that follows a ``status: error`` at ``index`` in the
    same frame (before any other status), if there is one."""
    payload = events[index].get("status")
    if type(payload) is not dict or payload.get("status") != "error":
        return None
    for after in range(index + 1, len(events)):
        kind = events[after]["type"]
        if kind == "error":
            return after
        if kind == "status":
            return None
    return None


def _fingerprint(message: dict[str, Any]) -> int:
    """CRC-32 of a message as JSON, keys sorted (what orjson cannot write, by its repr)."""
    try:
        return crc32(orjson.dumps(message, option=orjson.OPT_SORT_KEYS))
    except TypeError:  # orjson.JSONEncodeError: an integer past 64 bits, say
        return crc32(repr(message).encode())


def _json_type(value: Any) -> str:
    """How JSON names the type of a decoded value, for error messages."""
    if value is None:
        return "null"
    if type(value) is bool:
        return "boolean"
    if type(value) in (int, float):
        return f"number {value}" if abs(value) < 1e15 else "number out of range"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)
