"""An agent turn's steps, tools and sub-agents, from its stream's parts and commits; pure.

``docs/metrics.md``, "Agent steps, tools and sub-agents" (protocol §10.4): a *step* is one LLM
call, closed by its committed assistant ``message``; a *tool* runs from its complete
``tool-call`` part to the ``tool-result`` part with the same ``tool_call_id``; a step's time to
first output runs from the commit that ended the previous step (the last ``tool`` message, or
the assistant message when no tool ran) to the step's first live part, any attempt (a retry's
thrown-away output counts, as it does for TTFT). Steps and tool calls are counted from the
commits (what the server kept, a reconnect's snapshot included); times only from live parts.

``ChatSteps`` is one chat's share, owned by its ``TurnTracker``: the tracker hands it the part
frames it already looks at whenever one holds a part that is not text (and the first frame of
each step), so a frame of text costs one attribute read; what a turn did lands in its
``Turn.agent`` for the recorder. ``Subagents`` is one user's: the children its chats spawn
(§10.3), seen through the ``spawn_agent`` call on the parent's stream, the user's
``/chats/watch`` sockets (``created``, ``status_change``, ``capacity_change``) and, when
followed, the child's own stream (``ChildRecorder``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Final, Protocol

from loadtest.core.turn import ErrorInfo, StepLog, Turn
from loadtest.protocol.agents import (
    ARGS_DELTA,
    RESULT,
    RESULT_DELTA,
    SPAWN_AGENT,
    TOOL_CALL,
    TOOL_RESULT,
)
from loadtest.protocol.events import MESSAGE_PART
from loadtest.protocol.models import TERMINAL_STATUSES, ChatStatus

#: Segments a turn's timeline keeps (a plot shows a turn, not a thousand-step one).
MAX_TIMELINE: Final = 64
#: Tool calls of one chat waiting for their result; a bogus server's further calls are not
#: timed (they are still counted from the commit).
MAX_PENDING: Final = 256
#: A tool name longer than this is cut (it becomes a report key and a metric label).
MAX_NAME: Final = 64
#: Chats and children ``Subagents`` remembers; the oldest are forgotten first.
MAX_PARENTS: Final = 4096
MAX_CHILDREN: Final = 4096
#: Statuses after which a child is no longer working (``requires_action`` pauses it).
CHILD_DONE: Final = TERMINAL_STATUSES - {"requires_action"}


def tool_name(value: Any) -> str:
    """A tool's name as the figures key it: ``unknown`` when the part names none."""
    if type(value) is not str or not value:
        return "unknown"
    return value[:MAX_NAME]


class ChatSteps:
    """One chat's steps and tool calls, fed by its turn tracker (live parts and commits)."""

    __slots__ = ("_first", "_pending", "_retries", "_start", "chat_id", "subagents", "waiting")

    def __init__(self) -> None:
        #: True until the current step's first live part: the tracker then calls ``parts``
        #: even for a frame of text alone.
        self.waiting = True
        self._first: int | None = None
        #: The live commit that ended the previous step (None: the turn's first step, or the
        #: previous commit came in a snapshot, so no step time can be taken from it).
        self._start: int | None = None
        #: The turn's retries when the current step began (a retry belongs to its step).
        self._retries = 0
        #: Complete tool calls waiting for their result: id -> (tool name, part's arrival).
        self._pending: dict[str, tuple[str, int]] = {}
        #: The chat's id and its user's ``Subagents``, when sub-agents are followed.
        self.chat_id: str | None = None
        self.subagents: Subagents | None = None

    def parts(self, parts: list[dict[str, Any]], turn: Turn, t: int) -> None:
        """Live ``message_part`` events of one frame, received at ``t``, of ``turn``."""
        pending = self._pending
        for event in parts:
            body = event.get(MESSAGE_PART)
            part = body.get("part") if type(body) is dict else None
            if type(part) is not dict:
                continue  # the tracker records malformed parts
            kind = part.get("type")
            if kind == TOOL_RESULT:
                if RESULT_DELTA in part and RESULT not in part:
                    continue  # a piece of a result still streaming (guess: see RESULT_DELTA)
                call = part.get("tool_call_id")
                started = pending.pop(call, None) if type(call) is str else None
                if started is not None:
                    self._tool_done(turn, started, part, t)
                continue
            if self.waiting:
                self._first = t
                self.waiting = False
            if kind == TOOL_CALL and ARGS_DELTA not in part:
                call = part.get("tool_call_id")
                if type(call) is str and call not in pending and len(pending) < MAX_PENDING:
                    name = tool_name(part.get("tool_name"))
                    pending[call] = (name, t)
                    if name == SPAWN_AGENT and self.subagents is not None and self.chat_id:
                        self.subagents.spawn_call(self.chat_id, t)

    def _tool_done(
        self, turn: Turn, started: tuple[str, int], part: dict[str, Any], t: int
    ) -> None:
        name, at = started
        log = turn.agent
        log.tool_times.append((name, t - at))
        _segment(log, "tool", name, at, t)
        if name == SPAWN_AGENT and self.subagents is not None and self.chat_id:
            result = part.get(RESULT)
            child = result.get("chat_id") if type(result) is dict else None
            if type(child) is str and child:
                self.subagents.spawned(child, self.chat_id, t)

    def message(self, turn: Turn, role: Any, content: Any, t: int, live: bool) -> None:
        """A committed message of ``turn`` (a new one: the tracker drops repeats)."""
        log = turn.agent
        if role == "assistant":
            log.steps += 1
            if type(content) is list:
                calls = log.tool_calls
                for part in content:
                    if type(part) is dict and part.get("type") == TOOL_CALL:
                        name = tool_name(part.get("tool_name"))
                        calls[name] = calls.get(name, 0) + 1
            if live:
                self._step_done(turn, log, t)
        elif role == "tool":
            if type(content) is list:
                log.tool_errors += sum(
                    1
                    for part in content
                    if type(part) is dict
                    and part.get("type") == TOOL_RESULT
                    and part.get("is_error") is True
                )
        else:
            return
        self._start = t if live else None
        self._first = None
        self._retries = turn.retries
        self.waiting = True

    def _step_done(self, turn: Turn, log: StepLog, t: int) -> None:
        """A live assistant commit: the step's time to first output, and its bars."""
        start, first = self._start, self._first
        begin = turn.t0 if start is None else start
        retries = turn.retries - self._retries
        label = f"step {log.steps}" + (
            f", {retries} retr{'y' if retries == 1 else 'ies'}" if retries else ""
        )
        if first is None:
            # No live part of it came (its output arrived before this connection): its span.
            _segment(log, "stream", label, begin, t)
            return
        if start is not None:
            log.step_ttfts.append(first - start)
        _segment(log, "wait", label, begin, first)
        _segment(log, "stream", label, first, t)

    def turn_ended(self) -> None:
        """The active turn is over: the next one starts its first step."""
        self.waiting = True
        self._first = self._start = None
        self._retries = 0
        self._pending.clear()


def _segment(log: StepLog, kind: str, label: str, start: int, end: int) -> None:
    if len(log.timeline) < MAX_TIMELINE:
        log.timeline.append((kind, label, start, end))


# ---------------------------------------------------------------- sub-agents


class AgentRecorder(Protocol):
    """What sub-agents are recorded into (``core.recorder.Recorder``)."""

    counts: dict[str, int]

    def request(self, name: str, ns: int) -> None: ...
    def decode_error(self, reason: str, t: int) -> None: ...
    def error(self, info: ErrorInfo, t: int) -> None: ...
    def integrity(self, name: str, n: int) -> None: ...


class _Child:
    __slots__ = ("failed", "parent", "running_at", "seen_at", "spawned_at")

    def __init__(self, parent: str, spawned_at: int | None, seen_at: int) -> None:
        self.parent = parent
        #: The ``spawn_agent`` call's complete part on the parent's stream (None: not seen).
        self.spawned_at = spawned_at
        #: When this side first heard of the child.
        self.seen_at = seen_at
        self.running_at: int | None = None
        self.failed = False


class Subagents:
    """The children of one user's chats (protocol §10.3): counted once each, however many of
    the user's sockets announce them, and timed from the ``spawn_agent`` call that made them.

    A child is paired with its parent's oldest ``spawn_agent`` call not yet paired (calls of
    one step start their children in call order). ``on_child`` hears of each new child
    (``(child id, its spawn call's time or None)``): the user may follow its stream.
    """

    def __init__(
        self,
        recorder: AgentRecorder,
        on_child: Callable[[str, int | None], object] | None = None,
    ) -> None:
        self._recorder = recorder
        self.on_child = on_child
        #: The user's chats (parents), oldest first.
        self._parents: dict[str, None] = {}
        #: Per parent: its spawn calls with no child yet, and its children with no call yet.
        self._calls: dict[str, deque[int]] = {}
        self._unpaired: dict[str, deque[_Child]] = {}
        self._children: dict[str, _Child] = {}

    def __len__(self) -> int:
        """Children known now."""
        return len(self._children)

    def watch(self, chat_id: str) -> None:
        """A chat of this user: its children are this run's."""
        self._parents[chat_id] = None
        if len(self._parents) > MAX_PARENTS:
            oldest = next(iter(self._parents))
            del self._parents[oldest]
            self._calls.pop(oldest, None)
            self._unpaired.pop(oldest, None)

    def is_child(self, chat_id: str) -> bool:
        return chat_id in self._children

    def spawn_call(self, parent: str, t: int) -> None:
        """A complete ``spawn_agent`` call on ``parent``'s stream at ``t``."""
        waiting = self._unpaired.get(parent)
        if waiting:
            # Its child was announced first (another socket was quicker): pair them now.
            child = waiting.popleft()
            child.spawned_at = t
            if child.running_at is not None and child.running_at >= t:
                self._recorder.request("subagent_time_to_running", child.running_at - t)
            return
        self._calls.setdefault(parent, deque()).append(t)

    def spawned(self, child_id: str, parent: str, t: int) -> None:
        """The ``spawn_agent`` result on ``parent``'s stream named ``child_id``."""
        self._child(child_id, parent, t)

    def created(self, child_id: str, parent: str, status: Any, t: int) -> None:
        """A watch ``created`` event: ``child_id`` with ``parent_chat_id`` ``parent``."""
        if self._child(child_id, parent, t) is not None and type(status) is str:
            self.status(child_id, status, t)

    def status(self, child_id: str, status: str, t: int) -> None:
        """A child's status at ``t`` (its watch events, or its own stream's live ones)."""
        child = self._children.get(child_id)
        if child is None:
            return
        if status == "running":
            self._running(child, t)
        elif status == ChatStatus.ERROR and not child.failed:
            child.failed = True
            self._recorder.counts["subagents_failed"] += 1

    def admitted(self, child_id: str, t: int) -> None:
        """The concurrent-agent gate admitted ``child_id`` (a watch ``capacity_change``):
        its wait in the ``subagent`` pool, from its spawn call (or from when it was seen)."""
        child = self._children.get(child_id)
        if child is not None:
            since = child.seen_at if child.spawned_at is None else child.spawned_at
            self._recorder.request("capacity_wait_subagent", max(0, t - since))

    def child_turn(self, child_id: str, turn: Turn) -> None:
        """The followed child's stream saw its work end (``turn`` began at its spawn call)."""
        child = self._children.get(child_id)
        if child is None:
            return
        if child.running_at is None and turn.running_at is not None:
            self._running(child, turn.running_at)
        rec = self._recorder
        anchor = child.spawned_at
        if anchor is not None and turn.first_output_at is not None:
            rec.request("subagent_time_to_first_output", max(0, turn.first_output_at - anchor))
        if turn.outcome in ("failed", "unfinished"):
            error = turn.error
            ended_in_error = error is not None and error.stage == "status_error"
            if turn.outcome == "failed" and ended_in_error and not child.failed:
                child.failed = True
                rec.counts["subagents_failed"] += 1
            return
        if child.running_at is not None and turn.terminal_at is not None and turn.terminal_live:
            rec.request("subagent_duration", max(0, turn.terminal_at - child.running_at))

    def _child(self, child_id: str, parent: str, t: int) -> _Child | None:
        """The child, made (and counted) the first time a parent of ours is named for it."""
        child = self._children.get(child_id)
        if child is not None or parent not in self._parents:
            return child
        calls = self._calls.get(parent)
        child = _Child(parent, calls.popleft() if calls else None, t)
        if child.spawned_at is None:
            self._unpaired.setdefault(parent, deque()).append(child)
        self._children[child_id] = child
        if len(self._children) > MAX_CHILDREN:
            del self._children[next(iter(self._children))]
        self._recorder.counts["subagents_spawned"] += 1
        if self.on_child is not None:
            self.on_child(child_id, child.spawned_at)
        return child

    def _running(self, child: _Child, t: int) -> None:
        if child.running_at is not None:
            return
        child.running_at = t
        if child.spawned_at is not None and t >= child.spawned_at:
            self._recorder.request("subagent_time_to_running", t - child.spawned_at)


class ChildRecorder:
    """The ``TurnRecorder`` of a followed child's stream: its one turn (from the spawn call
    to the child's terminal status) goes to ``Subagents.child_turn``; decode errors, errors
    and integrity breaks go to the run's recorder; the rest is the child's alone."""

    def __init__(self, recorder: AgentRecorder, subagents: Subagents, child_id: str) -> None:
        self._recorder = recorder
        self._subagents = subagents
        self._child_id = child_id

    def turn_started(self, turn: Turn) -> None:
        pass

    def turn_ended(self, turn: Turn) -> None:
        error = turn.error
        if turn.outcome == "failed" and error is not None and error.stage != "status_error":
            # The client's trouble with the child's stream (not the child failing): an error.
            self._recorder.error(error, turn.t0 if turn.terminal_at is None else turn.terminal_at)
        self._subagents.child_turn(self._child_id, turn)

    def part_frame(self, turn: Turn, parts: int, t: int) -> None:
        pass

    def orphan_parts(self, n: int) -> None:
        pass

    def snapshot_events(self, n: int) -> None:
        pass

    def queue_length(self, length: int) -> None:
        pass

    def queue_wait(self, ns: int) -> None:
        pass

    def retry_event(self, delay_ms: int | None, kind: str | None, t: int) -> None:
        pass

    def error_event(self) -> None:
        pass

    def error(self, info: ErrorInfo, t: int) -> None:
        self._recorder.error(info, t)

    def decode_error(self, reason: str, t: int) -> None:
        self._recorder.decode_error(reason, t)

    def preview_reset(self) -> None:
        pass

    def parts_discarded(self, n: int) -> None:
        pass

    def conversation(self, ns: int) -> None:
        pass

    def integrity(self, name: str, n: int) -> None:
        self._recorder.integrity(name, n)

    def message_update(self) -> None:
        pass

    def count(self, name: str, n: int = 1) -> None:
        pass
