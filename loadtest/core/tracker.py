"""One chat's turns: a state machine fed stream events and times, giving latencies out.

Shaped like h11: the caller tells it what happened (``start`` a turn before the POST that
carries it, ``feed`` the events of each frame with the frame's receive time, ``fail`` when the
transport breaks, ``expire`` on a timeout) and it answers with the turns that ended: its return
values are the only way a turn's end is told. It reads no clock and does no I/O; every figure
goes to the ``Recorder`` it was given.

Attribution, as ``docs/metrics.md`` defines a turn:
- the *active* turn owns live events; turns posted while it runs wait in a FIFO (the server
  queued them) and become active, in order, when the chat promotes them;
- a user ``message`` starts the active turn's server-side life; a second user message while
  the active turn is under way is a queue promotion, which ends the active turn;
- a terminal ``status`` ends the active turn (``error`` as a failure);
- snapshot events (the frames sent on connect) never count as output, but still tell the
  tracker which messages exist and whether the active turn ended while it was not looking;
- message ids only move forward, so a reconnect's snapshot is never counted twice;
- each event kind (``protocol/events.py``) is handled from one table, ``HANDLERS``, live and
  in a connect snapshot; a kind it does not know is passed over. Payloads are read through
  ``core/payloads.py`` (a field of the wrong type is a decode error, never an exception);
  integrity (seq numbering, text against commits) is ``core/integrity.py``'s.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from loadtest.core import payloads
from loadtest.core.decode import STREAM_ERROR_KEY, Event
from loadtest.core.integrity import FOLD_TEXTS, NOT_TEXT, StreamIntegrity
from loadtest.core.steps import ChatSteps
from loadtest.core.turn import ErrorInfo, Outcome, PartFrames, Turn, TurnRecorder
from loadtest.protocol.constants import BATCH_SIZE
from loadtest.protocol.events import (
    ACTION_REQUIRED,
    ERROR,
    EVENT_KINDS,
    HISTORY_RESET,
    MESSAGE,
    MESSAGE_PART,
    PREVIEW_RESET,
    QUEUE_UPDATE,
    RETRY,
    STATUS,
    EventKind,
)
from loadtest.protocol.models import TERMINAL_STATUSES, ChatStatus

#: Statuses that end a turn: ``requires_action`` only pauses it until the client answers.
ENDS_A_TURN: Final = TERMINAL_STATUSES - {ChatStatus.REQUIRES_ACTION}
RUNNING: Final[str] = ChatStatus.RUNNING.value
STATUS_ERROR: Final[str] = ChatStatus.ERROR.value

#: Coder sends a snapshot in chunks of at most this many events (its frame limit).
SNAPSHOT_CHUNK: Final = BATCH_SIZE

#: ns per µs: the gaps between a turn's part frames are tallied in µs (as the recorder's).
NS_PER_US: Final = 1_000

#: What ``feed`` returns for a frame that ended no turn.
NO_TURNS: Final[tuple[Turn, ...]] = ()


class TurnTracker:
    """The turns of one chat, seen through one stream connection at a time."""

    __slots__ = (
        "_active",
        "_episode_parts",
        "_fast",
        "_fast_from",
        "_in_snapshot",
        "_keep_statuses",
        "_queued",
        "_recorder",
        "_snapshot_parts",
        "_taken",
        "conversation_end",
        "conversation_start",
        "integrity",
        "max_message_id",
        "message_ids",
        "statuses",
        "steps",
    )

    def __init__(self, recorder: TurnRecorder, *, keep_statuses: bool = False) -> None:
        """``keep_statuses``: keep every live status event (its status and arrival) in
        ``statuses`` until the caller takes them (``take_statuses``), as h11 hands back events."""
        self._recorder = recorder
        #: Live statuses seen and not yet taken (only with ``keep_statuses``).
        self.statuses: list[tuple[str, int]] = []
        self._keep_statuses = keep_statuses
        self._active: Turn | None = None
        self._queued: deque[Turn] = deque()
        self._in_snapshot = False
        #: Live parts on this connection since the last commit or preview_reset (era D).
        self._episode_parts = 0
        self._snapshot_parts = 0
        #: The index of an error event a status of this frame already took (-1: none).
        self._taken = -1
        self.max_message_id = 0
        #: Every committed message id this chat's stream received, live or in a snapshot.
        self.message_ids: set[int] = set()
        self.conversation_start: int | None = None
        self.conversation_end: int | None = None
        #: Its stream's seq and content checks (``core/integrity.py``).
        self.integrity = StreamIntegrity(recorder)
        #: Its agent turns' steps, tools and sub-agents (``core/steps.py``).
        self.steps = ChatSteps()
        #: The turn a frame of one live text part may be measured for by ``one_part``: the
        #: active turn while the stream is live, no step waits for its first part and the
        #: turn's output episode has begun (so that frame changes nothing but tallies);
        #: else None. Settled at the end of every method that changes what it depends on.
        self._fast: Turn | None = None
        #: Its ``parts`` when it became the fast turn: the parts ``one_part`` measures from
        #: then on join ``_episode_parts`` when it stops being one (``_unsettle``), not per
        #: frame.
        self._fast_from = 0

    # ------------------------------------------------------------ what the caller reports

    @property
    def recorder(self) -> TurnRecorder:
        """Where its turns, parts and (on ``one_part``'s path) frames are recorded."""
        return self._recorder

    @property
    def active(self) -> Turn | None:
        return self._active

    @property
    def busy(self) -> bool:
        """True while a turn of this chat is in flight or waiting in the queue."""
        return self._active is not None or bool(self._queued)

    def take_statuses(self) -> list[tuple[str, int]]:
        """The live statuses kept since the last call, oldest first; forgotten here."""
        taken = self.statuses[:]
        self.statuses.clear()  # the same list: a meter holds it
        return taken

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
        self._settle_fast()
        return turn

    def connected(self) -> None:
        """A stream connection opened: the next frame (or 256-event frames) is its snapshot."""
        self._unsettle()
        self._in_snapshot = True
        self._episode_parts = 0
        self._snapshot_parts = 0
        self.integrity.connected(self._active)

    def interrupt_requested(self) -> None:
        if self._active is not None:
            self._active.interrupted = True

    def feed(self, events: list[Event], t: int) -> Sequence[Turn]:
        """The events of one frame received at ``t``; returns the turns that ended."""
        ended: Sequence[Turn]
        self._unsettle()  # (the handlers read ``_episode_parts``)
        if self._in_snapshot:
            ended = self._feed_snapshot(events, t)
        else:
            for event in events:
                if event["type"] != MESSAGE_PART:
                    ended = self._feed_mixed(events, t)
                    break
            else:
                ended = self._feed_parts(events, t)
        self._settle_fast()
        return ended

    def _feed_parts(self, events: list[Event], t: int) -> Sequence[Turn]:
        """A run of live parts: the frame nearly every frame is, handled here, without a
        handler call (a run of parts in a mixed frame comes here too)."""
        n = len(events)
        self._episode_parts += n
        turn = self._active
        shape = self.integrity.parts(events, turn, t)
        if turn is None:
            self._recorder.orphan_parts(n)
            return NO_TURNS
        if shape and (shape == NOT_TEXT or self.steps.waiting):
            self.steps.parts(events, turn, t)
        if turn.first_output_at is None:
            turn.first_output_at = turn.episode_first_at = t
        elif turn.episode_first_at is None:
            turn.episode_first_at = t
        self._recorder.part_frame(turn, n, t)
        turn.parts += n
        turn.last_part_frame_at = t
        return NO_TURNS

    def one_part(self, event: Event, t: int, nbytes: int, frames: PartFrames) -> bool:
        """The frame nearly every frame is, whole: one live text part of the active turn's
        step under way, numbered in order or not at all, in a frame of ``nbytes``. Measured
        as ``Recorder.frame`` (into ``frames``) and ``feed`` would measure it, inline: a
        numbered part's place is integrity's ``continues``, its text joins integrity's
        ``step_texts``. False, with nothing recorded, for any other frame:
        then ``frame`` and ``feed`` must take it (the meter's fast path, taken only where
        ``frames`` is this tracker's own recorder)."""
        turn = self._fast
        if turn is None or event["type"] != MESSAGE_PART:
            return False
        try:
            body = event[MESSAGE_PART]
            text = body["part"]["text"]
        except (KeyError, TypeError):
            return False
        if type(text) is not str:
            return False
        integrity = self.integrity
        # (Subscripts, ``in`` and defaultdicts rather than ``get``: cheaper per frame.)
        if "seq" in body:
            seq = body["seq"]
            if seq is not None and not integrity.continues(body, seq, turn):
                return False
        texts = integrity.step_texts
        if texts is not None:
            texts.append(text)
            if len(texts) >= FOLD_TEXTS:
                integrity.fold()
        if not frames.bucket_start <= t < frames.bucket_end:
            frames.bucket(t)
        frames.one_event_bytes.append(nbytes)
        # (A fast turn has had a part frame and its episode a first part: ``_fast``.)
        frames.frame_gaps.append((t - turn.last_part_frame_at) // NS_PER_US)  # type: ignore[operator]
        turn.parts += 1  # (and so the episode's: ``_fast_from``)
        turn.last_part_frame_at = t
        return True

    def fail(self, info: ErrorInfo, t: int) -> list[Turn]:
        """The transport gave up on this chat: every turn in flight or queued fails."""
        ended: list[Turn] = []
        for turn in self._take_all():
            turn.error = info
            self._end(turn, t, "failed", ended, live=False)
        self._settle_fast()
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
        self._settle_fast()
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
        self._settle_fast()
        return ended

    def abandon(self, t: int) -> list[Turn]:
        """The run is over: turns still in flight are counted as unfinished."""
        ended: list[Turn] = []
        for turn in self._take_all():
            self._end(turn, t, "unfinished", ended, live=False)
        self._settle_fast()
        return ended

    def finish_conversation(self) -> None:
        """The chat is done: record its duration (first turn's start to last terminal)."""
        if self.conversation_start is not None and self.conversation_end is not None:
            self._recorder.conversation(self.conversation_end - self.conversation_start)

    # ------------------------------------------------------------ frames

    def _feed_mixed(self, events: list[Event], t: int) -> list[Turn]:
        """A frame with something besides output: each event in order, from ``HANDLERS``."""
        ended: list[Turn] = []
        self._taken = -1
        index, count = 0, len(events)
        while index < count:
            handling = HANDLERS.get(events[index]["type"])
            # (None: a kind this tracker does not know, or one only a snapshot has.)
            handle = handling.live if handling is not None else None
            after = handle(self, events, index, t, ended, True) if handle is not None else None
            index = index + 1 if after is None else after
        return ended

    def _feed_snapshot(self, events: list[Event], t: int) -> list[Turn]:
        """A connect snapshot's chunk, from ``HANDLERS``: what is ``late`` (the status) after
        the rest, since servers differ in the snapshot's order."""
        ended: list[Turn] = []
        self._recorder.snapshot_events(len(events))
        late = False
        for index, event in enumerate(events):
            handling = HANDLERS.get(event["type"])
            if handling is not None and handling.snapshot is not None:
                if handling.late:
                    late = True
                else:
                    handling.snapshot(self, events, index, t, ended, False)
        if late:
            for index, event in enumerate(events):
                handling = HANDLERS.get(event["type"])
                if handling is not None and handling.late and handling.snapshot is not None:
                    handling.snapshot(self, events, index, t, ended, False)
        if len(events) < SNAPSHOT_CHUNK and not self._snapshot_parts:
            # Nothing of a step in progress was replayed: the next step is seen whole.
            self.integrity.new_step(None)
        self._in_snapshot = len(events) >= SNAPSHOT_CHUNK
        return ended

    # ------------------------------------------------------------ HANDLERS' entries
    # Each takes (events, the index of its event, t, the frame's ended turns, live) and
    # returns the index of the next event to handle, or None for the one after its own.

    def _run_of_parts(
        self, events: list[Event], index: int, t: int, ended: list[Turn], live: bool
    ) -> int | None:
        if not live:
            # Era D replays the current episode whole after its preview_reset: checked as if
            # live. Eras A-C replay only a buffer: the step is not checked.
            self._snapshot_parts += 1
            if self.integrity.text_known:
                self.integrity.parts(events[index : index + 1], self._active, t)
            return None
        stop = index + 1
        while stop < len(events) and events[stop]["type"] == MESSAGE_PART:
            stop += 1
        self._feed_parts(events[index:stop], t)
        return stop

    def _queue_update(
        self, events: list[Event], index: int, t: int, ended: list[Turn], live: bool
    ) -> None:
        length = payloads.queue_length(events[index], self._recorder, t)
        if length is not None:
            self._recorder.queue_length(length)

    def _preview_reset(
        self, events: list[Event], index: int, t: int, ended: list[Turn], live: bool
    ) -> None:
        """Era D: the parts streamed since the last commit are thrown away (a retry, or a new
        step after a commit: then there are none). The one every snapshot starts with is
        not one: it only says the step that follows is seen whole."""
        if not live:
            self.integrity.preview_reset(None)
            return
        turn = self._active
        self._recorder.preview_reset()
        self.integrity.preview_reset(turn)
        discarded, self._episode_parts = self._episode_parts, 0
        if discarded:
            self._recorder.parts_discarded(discarded)
        if turn is not None:
            turn.parts_discarded += discarded
            turn.episode_first_at = None

    def _history_reset(
        self, events: list[Event], index: int, t: int, ended: list[Turn], live: bool
    ) -> None:
        self.integrity.history_reset()  # the history follows again: a new baseline

    # ------------------------------------------------------------ what the events mean

    def _message(
        self, events: list[Event], index: int, t: int, ended: list[Turn], live: bool
    ) -> None:
        message = payloads.message(events[index], self._recorder, t)
        if message is None:
            return
        message_id, role, usage = message.get("id"), message.get("role"), message.get("usage")
        if message_id is not None:
            self.message_ids.add(message_id)
            if self.integrity.seen_before(message_id, message, live):
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
            turn.output_tokens += payloads.output_tokens(usage, self._recorder, t)

    def _commit(self, turn: Turn | None, message: dict[str, Any]) -> None:
        """A committed message keeps the episode's parts: its first is the first kept output."""
        self._episode_parts = 0
        self.integrity.commit(turn, message)
        if turn is None:
            return
        if turn.first_kept_output_at is None and turn.episode_first_at is not None:
            turn.first_kept_output_at = turn.episode_first_at
        turn.episode_first_at = None

    def _user_seen(self, turn: Turn, t: int, live: bool) -> None:
        turn.user_seen = True
        if live and turn.queued:
            self._recorder.queue_wait(t - turn.t0)

    def _status(
        self, events: list[Event], index: int, t: int, ended: list[Turn], live: bool
    ) -> None:
        if live:
            follows = _error_after(events, index)
            if follows is not None:
                # Era D's sync writes the status, then the error it ended with (spec §9.3):
                # the error belongs to the turn that status ends, so it is taken first.
                self._error(events, follows, t, ended, live)
                self._taken = follows
        status = payloads.status(events[index], self._recorder, t)
        if status is None:
            return
        if live and self._keep_statuses:
            self.statuses.append((status, t))
        turn = self._active
        if turn is None:
            return
        if status == RUNNING:
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
        if status == STATUS_ERROR:
            if turn.error is None:
                turn.error = ErrorInfo("status_error", "chat ended in status error", "generic")
            outcome = "failed"
        else:
            outcome = "interrupted" if turn.interrupted else "completed"
        self._end(turn, t, outcome, ended, live=live)
        self._advance_queue()

    def _action_required(
        self, events: list[Event], index: int, t: int, ended: list[Turn], live: bool
    ) -> None:
        """Era D: the turn waits for tools only the client runs; their ids are kept for the
        driver to answer (a snapshot's too: a late stream must still answer)."""
        named = payloads.tool_call_ids(events[index], self._recorder, t)
        if named is None:
            return
        turn = self._active
        if turn is None:
            return
        if live and turn.action_required_at is None:
            turn.action_required_at = t
        turn.tool_calls = named

    def _retry(
        self, events: list[Event], index: int, t: int, ended: list[Turn], live: bool
    ) -> None:
        turn = self._active
        self.integrity.new_step(turn)  # the server starts the step again
        fields = payloads.retry(events[index], self._recorder, t)
        if fields is None:
            return
        delay, kind = fields
        self._recorder.retry_event(delay, kind, t)
        if turn is not None:
            turn.retries += 1

    def _error(
        self, events: list[Event], index: int, t: int, ended: list[Turn], live: bool
    ) -> None:
        event = events[index]
        if not live:
            if event.get(STREAM_ERROR_KEY):
                # Era A: the server refused the stream with an error envelope for a first
                # frame (then closes). It is no snapshot: keep it, with its message.
                self._recorder.error_event()
                self._recorder.error(ErrorInfo.from_payload("stream_open", event.get(ERROR)), t)
            return
        if index == self._taken:
            return  # a status before it took it
        self._recorder.error_event()
        stream_failure = bool(event.get(STREAM_ERROR_KEY))
        info = ErrorInfo.from_payload(
            "stream_event" if stream_failure else "status_error", event.get(ERROR)
        )
        turn = self._active
        if turn is None or stream_failure:
            self._recorder.error(info, t)
        else:
            turn.error = info

    # ------------------------------------------------------------ bookkeeping

    def _end(self, turn: Turn, t: int, outcome: Outcome, ended: list[Turn], live: bool) -> None:
        if turn is self._active:
            self.integrity.close_episode(turn)
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

    def _unsettle(self) -> None:
        """No fast turn; the parts measured for it on the fast path join the episode's."""
        turn = self._fast
        if turn is not None:
            self._episode_parts += turn.parts - self._fast_from
            self._fast = None

    def _settle_fast(self) -> None:
        """``_fast`` anew, after a change to the active turn, the snapshot or the steps."""
        self._unsettle()
        turn = self._active
        if (
            turn is not None
            and not self._in_snapshot
            and not self.steps.waiting
            and turn.episode_first_at is not None
            and turn.last_part_frame_at is not None
        ):
            self._fast, self._fast_from = turn, turn.parts


#: An entry of ``HANDLERS``: (tracker, the frame's events, the index of its event, t, the
#: frame's ended turns, live) -> the next event's index (None: the one after).
Handler = Callable[[TurnTracker, list[Event], int, int, list[Turn], bool], int | None]


@dataclass(frozen=True, slots=True)
class Handling:
    """How the tracker handles one event kind."""

    #: A live event (None: passed over live).
    live: Handler | None
    #: An event of a connect snapshot (None: passed over there).
    snapshot: Handler | None
    #: In a snapshot, handled after every other event of its chunk (the status: servers
    #: differ in the snapshot's order, and the messages must be known first).
    late: bool = False


def counting(kind: EventKind) -> Handling:
    """The entry of a kind declared ``counted``: each live one adds to its count figure."""
    figure = kind.counted
    assert figure is not None, kind.name

    def count(
        tracker: TurnTracker, events: list[Event], index: int, t: int, ended: list[Turn], live: bool
    ) -> None:
        tracker._recorder.count(figure)

    return Handling(live=count, snapshot=None)


T = TurnTracker
#: Every event kind of ``protocol/events.py`` and how the tracker handles it: the one table
#: both ``feed``'s live path and its snapshot path dispatch from (a test checks that each
#: declared kind has its entry; a kind declared ``counted`` gets one from ``counting``). A
#: frame of parts alone (nearly every frame) takes the fast path and never looks here.
HANDLERS: Final[dict[str, Handling]] = {
    MESSAGE_PART: Handling(live=T._run_of_parts, snapshot=T._run_of_parts),
    MESSAGE: Handling(live=T._message, snapshot=T._message),
    STATUS: Handling(live=T._status, snapshot=T._status, late=True),
    ERROR: Handling(live=T._error, snapshot=T._error),
    QUEUE_UPDATE: Handling(live=T._queue_update, snapshot=T._queue_update),
    RETRY: Handling(live=T._retry, snapshot=None),
    ACTION_REQUIRED: Handling(live=T._action_required, snapshot=T._action_required),
    PREVIEW_RESET: Handling(live=T._preview_reset, snapshot=T._preview_reset),
    HISTORY_RESET: Handling(live=T._history_reset, snapshot=None),
}
HANDLERS.update((n, counting(k)) for n, k in EVENT_KINDS.items() if k.counted and n not in HANDLERS)
del T


def _error_after(events: list[Event], index: int) -> int | None:
    """The index of an ``error`` event that follows a ``status: error`` at ``index`` in the
    same frame (before any other status), if there is one."""
    payload = events[index].get(STATUS)
    if type(payload) is not dict or payload.get("status") != STATUS_ERROR:
        return None
    for after in range(index + 1, len(events)):
        kind = events[after]["type"]
        if kind == ERROR:
            return after
        if kind == STATUS:
            return None
    return None
