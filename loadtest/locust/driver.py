"""One chat's life over the chats API and its stream, with no Locust inside.

``ReconnectingStream`` holds a chat's websocket, read in its own greenlet and dialled again
with ``after_id`` after a drop. ``Conversation`` is one chat: create it, post turns (or edit
the last one), follow each turn to its end within the turn timeout, interrupt or queue on
the way, archive it. The Locust users (``locust/users.py``) only decide when to do what; all
they are handed is a ``Runtime`` (settings, recorder, random source) and their REST client.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Sequence

import gevent
from gevent.event import Event

from loadtest.client.rest import ChatClient, RestError
from loadtest.client.ws import HandshakeError, WebSocketStream
from loadtest.core.meter import StreamMeter
from loadtest.core.steps import ChildRecorder, Subagents
from loadtest.core.tracker import TurnTracker
from loadtest.core.turn import ErrorInfo, Stage, Turn
from loadtest.locust.runtime import Runtime
from loadtest.protocol.eras import Era, era_from_frame

#: Pause before each reconnect attempt after a dropped stream (then the last, repeated).
RECONNECT_BACKOFF_S = (0.1, 0.5, 1.0, 2.0)
#: How long a closing stream waits for the server's close frame before dropping the socket.
CLOSE_TIMEOUT_S = 2.0

TurnHook = Callable[[Turn], object]
#: Told of each live status on a chat's stream: (chat id, status, arrival).
StatusHook = Callable[[str, str, int], object]


def failover_loss(committed: list[int], received: set[int]) -> int:
    """Committed messages no socket of the chat received (docs/metrics.md, "Replicas")."""
    return sum(1 for message_id in committed if message_id not in received)


def http_error(stage: Stage, error: RestError) -> ErrorInfo:
    return ErrorInfo(stage, error.message or str(error), kind=error.kind, status_code=error.status)


class ReconnectingStream:
    """A chat's stream connection, read in its own greenlet, reconnecting after a drop.

    A read-only watcher (another window on the chat) passes a tracker with no turns: what it sees is
    counted, no turn is its own, and it does not reconnect on its own.
    """

    def __init__(
        self,
        rt: Runtime,
        client: ChatClient,
        chat_id: str,
        tracker: TurnTracker | None,
        replica: int | None = None,
        on_turn_ended: TurnHook | None = None,
        on_status: Callable[[str, int], object] | None = None,
    ) -> None:
        """``on_turn_ended`` is told of each turn of ``tracker`` that ends while the stream
        has it: what the tracker returns, from a frame or from the stream's failure.
        ``on_status`` of each live status the tracker kept (``keep_statuses``), after its frame."""
        self._runtime = rt
        self._on_turn_ended = on_turn_ended
        self._on_status = on_status
        self._client = client
        self._chat_id = chat_id
        self._tracker = tracker
        self._meter = StreamMeter(rt.recorder, tracker, time.perf_counter_ns)
        #: The replica this stream connects to (several replicas only); a reconnect moves
        #: it to the next, as a load balancer would.
        self.replica = replica
        #: (cause, drop time) of the drop a reconnect is answering, until its first frame.
        self._dropped: tuple[str, int] | None = None
        #: True from a drop until the reconnect succeeded or gave up.
        self.reconnecting = False
        #: Drops this stream came back from (or tried to).
        self.drops = 0
        self._ws: WebSocketStream | None = None
        self._greenlet: gevent.Greenlet | None = None
        self._closing = False
        #: Set whenever a turn ends or the connection changes: the driver's wake-up.
        self.changed = Event()
        self.reconnects_left = rt.settings.scenario.chat.max_reconnects

    @property
    def is_open(self) -> bool:
        return self._ws is not None

    def open(self, reconnect: bool = False) -> bool:
        """Dial the stream; False (with the failure recorded) when it cannot be opened. True
        at once when it is open: a turn's ``post`` may have opened it while the reader slept
        in a reconnect's backoff, and the reader then reads that socket (a second one would
        hold a server subscription nobody reads)."""
        if self._ws is not None:
            return True
        tracker, rt = self._tracker, self._runtime
        url, headers = self._client.stream_target(
            self._chat_id,
            tracker.after_id if tracker else None,
            rt.replica_url(self.replica) if self.replica is not None else None,
        )
        replica = rt.recorder.replica(self.replica) if self.replica is not None else None
        self._meter.replica = replica
        if tracker is not None:
            tracker.integrity.replica = replica
        ws = WebSocketStream(url, headers)
        start = time.perf_counter_ns()
        try:
            ws.connect()
        except HandshakeError as exc:
            message = exc.body.decode("utf-8", "replace")[:300]
            self._open_failed(ErrorInfo("stream_open", message, status_code=exc.status))
            return False
        except OSError as exc:
            self._open_failed(ErrorInfo("stream_open", f"{type(exc).__name__}: {exc}"))
            return False
        rt.recorder.stream_opened(time.perf_counter_ns() - start, reconnect=reconnect)
        if replica is not None:
            replica.stream_opened()
        if tracker is not None:
            tracker.connected()
        self._ws = ws
        self._runtime.open_streams += 1
        if self._greenlet is None or self._greenlet.dead:
            self._greenlet = gevent.spawn(self._read)
        return True

    def close(self) -> None:
        """The closing handshake: the reader keeps reading (and counting) until the server's
        close frame, within ``CLOSE_TIMEOUT_S``; then the socket is dropped either way."""
        self._closing = True
        ws = self._ws
        if ws is not None:
            ws.start_close()
        if self._greenlet is not None:
            self._greenlet.join(timeout=CLOSE_TIMEOUT_S)
        if ws is not None:
            ws.abort()
        if self._greenlet is not None:
            self._greenlet.kill(block=False)

    def _open_failed(self, info: ErrorInfo) -> None:
        t = time.perf_counter_ns()
        if self._meter.replica is not None:
            self._meter.replica.error()
        if self._tracker is not None and self._tracker.busy:
            self.turns_ended(self._tracker.fail(info, t))
        else:
            self._runtime.recorder.error(info, t)
        self.changed.set()

    def _read(self) -> None:
        rt = self._runtime
        while self._ws is not None:
            ws = self._ws
            frames = ws.frames()
            if self._dropped is not None:
                frames = self._first_after_drop(frames)
            if rt.settings.era_from_stream and rt.stream_era is None:
                frames = self._learn_era(frames)
            for ended in self._meter.read(frames):
                if ended:
                    self.turns_ended(ended)
                if self._on_status is not None and self._tracker is not None:
                    for status, t in self._tracker.take_statuses():
                        self._on_status(status, t)
            rt.open_streams -= 1
            self._ws = None
            if self._closing:
                return
            self._after_close(ws)

    def turns_ended(self, ended: Sequence[Turn]) -> None:
        """Turns of this chat ended (the tracker said so): the driver's hook, and its wake-up."""
        hook = self._on_turn_ended
        if hook is not None:
            for turn in ended:
                hook(turn)
        self.changed.set()

    def _first_after_drop(self, frames: Iterator[tuple[bytes, int]]) -> Iterator[tuple[bytes, int]]:
        """The reconnected socket's first frame ends ``reconnect_time``."""
        first = next(frames, None)
        if first is None:
            return frames
        assert self._dropped is not None
        cause, dropped_at = self._dropped
        self._dropped = None
        self._runtime.recorder.reconnected(cause, first[1] - dropped_at)
        return itertools.chain((first,), frames)

    def _learn_era(self, frames: Iterator[tuple[bytes, int]]) -> Iterator[tuple[bytes, int]]:
        """Envelope or bare array: the first frame settles era A or B for this process."""
        rt = self._runtime
        for frame in frames:
            era = era_from_frame(frame[0])
            if era is not None and rt.stream_era is None:
                rt.stream_era = era
                rt.recorder.count(f"streams_era_{era.value}")
            yield frame
            yield from frames

    def _after_close(self, ws: WebSocketStream) -> None:
        closed = ws.closed
        tracker = self._tracker
        rt = self._runtime
        t = time.perf_counter_ns()
        if closed is not None and not closed.normal:
            info = ErrorInfo("stream_closed", f"closed {closed.code}: {closed.reason}".strip(": "))
            rt.recorder.error(info, t)
            if self._meter.replica is not None:
                self._meter.replica.error()
        dropped = closed is None or not closed.normal
        if tracker is None or not (tracker.busy or dropped):
            self.changed.set()
            return
        # A socket the server or the network dropped comes back at once, busy or not, as a
        # browser window's would (on the next replica when there are several); a normal close
        # only while a turn is in flight. No close frame at all (a reset, a dead replica)
        # is cause "error"; else its close code.
        self._dropped = ("error" if closed is None or closed.code == 1006 else str(closed.code), t)
        self.reconnecting = True
        self.drops += 1
        allowed = rt.settings.scenario.chat.max_reconnects
        while self.reconnects_left > 0 and not self._closing:
            attempt = allowed - self.reconnects_left
            self.reconnects_left -= 1
            if self.replica is not None:
                self.replica = (self.replica + 1) % rt.replica_count
            gevent.sleep(RECONNECT_BACKOFF_S[min(attempt, len(RECONNECT_BACKOFF_S) - 1)])
            if self.open(reconnect=True):
                self.reconnecting = False
                return
        self._dropped = None
        self.reconnecting = False
        if tracker.busy:
            reason = f"stream closed {closed.code if closed else 1006} mid-turn; reconnects spent"
            self.turns_ended(tracker.fail(ErrorInfo("stream_closed", reason), t))
        self.changed.set()


class Conversation:
    """One chat from its first turn to its archive, driven turn by turn.

    Every method records its own failures (by stage) and returns whether it got anywhere;
    none raises for what the server answers.
    """

    def __init__(
        self,
        rt: Runtime,
        client: ChatClient,
        organization: str | None,
        on_turn_ended: TurnHook | None = None,
        on_status: StatusHook | None = None,
        replica: int | None = None,
        subagents: Subagents | None = None,
    ) -> None:
        """``subagents``: the user's, told of this chat and of each ``spawn_agent`` it runs."""
        self._rt = rt
        self._client = client
        self._organization = organization
        self._on_turn_ended = on_turn_ended
        self._on_status = on_status
        self._subagents = subagents
        #: The replica this chat's driver talks to (several replicas only).
        self._replica = replica
        self.chat_id: str | None = None
        self._tracker: TurnTracker | None = None
        self._stream: ReconnectingStream | None = None
        self._last_user_message: int | None = None
        #: Turns of this chat started so far (queued ones included).
        self.turns = 0

    @property
    def can_edit(self) -> bool:
        return self._last_user_message is not None

    def begin(self, prompt: str, intended: int | None = None) -> bool:
        """The first turn: create the chat with ``prompt`` and open its stream."""
        rt = self._rt
        watched = self._on_status is not None or self._replica is not None
        tracker = self._tracker = TurnTracker(rt.recorder, keep_statuses=watched)
        self._start_turn(intended).initial = True
        self.turns = 1
        try:
            chat, latency = self._client.create_chat(prompt, self._organization, rt.workspace())
        except RestError as exc:
            self._ended(tracker.fail(http_error("create_chat", exc), time.perf_counter_ns()))
            self._count_429(exc)
            self._tracker = None
            return False
        rt.recorder.request("chat_create_latency", latency)
        self.chat_id = chat.id
        if self._subagents is not None:
            self._subagents.watch(chat.id)
            tracker.steps.chat_id, tracker.steps.subagents = chat.id, self._subagents
        rt.live_chats[chat.id] = 0
        rt.chat_clients[chat.id] = self._client
        if self._replica is not None:
            rt.chat_replicas[chat.id] = self._replica
        self._stream = ReconnectingStream(
            rt,
            self._client,
            chat.id,
            self._tracker,
            self._replica,
            self._on_turn_ended,
            self._saw_status if watched else None,
        )
        return self._stream.open()

    def post(self, prompt: str) -> bool:
        """A next turn; the server queues it when one is still running."""
        assert self.chat_id is not None and self._tracker is not None
        self.turns += 1  # a turn of the conversation's budget, even if it never starts
        stream = self._stream
        if stream is not None and not stream.is_open:
            stream.reconnects_left = self._rt.settings.scenario.chat.max_reconnects
            if not stream.open(reconnect=True):
                return False
        turn = self._start_turn()
        try:
            response, latency = self._client.post_message(self.chat_id, prompt)
        except RestError as exc:
            self._count_429(exc)
            self._fail_turn(turn, http_error("create_message", exc))
            return False
        self._rt.recorder.message_posted(latency, response.queued)
        if response.message is not None:
            self._last_user_message = response.message.id
        return True

    def edit(self, prompt: str) -> bool:
        """A next turn as an edit of the last user message (the server refreshes the chat)."""
        assert self.chat_id is not None and self._tracker is not None
        message_id = self._last_user_message
        assert message_id is not None, "edit needs a message of ours"
        self.turns += 1
        turn = self._start_turn()
        try:
            new_id, latency = self._client.edit_message(self.chat_id, message_id, prompt)
        except RestError as exc:
            self._fail_turn(turn, http_error("create_message", exc))
            return False
        self._rt.recorder.request("chat_message_latency", latency)
        if new_id is not None:
            self._last_user_message = new_id  # the next edit names the message as it is now
        return True

    def _start_turn(self, intended: int | None = None) -> Turn:
        """The tracker's next turn, marked with the replica its driver talks to."""
        assert self._tracker is not None
        turn = self._tracker.start(time.perf_counter_ns(), intended=intended)
        turn.replica = self._replica
        return turn

    def follow(self, interrupt: bool = False, queue_next: str | None = None) -> None:
        """Wait until no turn of the chat is in flight (each within the turn timeout). Once
        the active turn shows output: ``interrupt`` it, and post ``queue_next`` behind it."""
        tracker, stream = self._tracker, self._stream
        if tracker is None or stream is None:
            return
        timeout_ns = int(self._rt.settings.scenario.chat.turn_timeout * 1e9)
        while tracker.busy:
            stream.changed.clear()
            active = tracker.active
            if active is not None and active.tool_calls:
                self._run_tools(active)
                continue
            waiting = interrupt or queue_next is not None
            if waiting and active is not None and active.first_output_at:
                if interrupt:
                    interrupt = False
                    self._interrupt()
                if queue_next is not None:
                    self.post(queue_next)
                    queue_next = None
                continue
            stream.changed.wait(timeout=0.05 if waiting else 1.0)
            self._ended(tracker.expire(time.perf_counter_ns(), timeout_ns))

    def abandon(self) -> None:
        """The run is over: turns still in flight are unfinished."""
        if self._tracker is not None:
            self._ended(self._tracker.abandon(time.perf_counter_ns()))

    def _ended(self, turns: Sequence[Turn]) -> None:
        """Turns the tracker ended on the driver's own call (not from a frame)."""
        if self._on_turn_ended is not None:
            for turn in turns:
                self._on_turn_ended(turn)

    def finish(self) -> None:
        """Close the stream, record the conversation's duration, count what a dropped stream
        lost for good (``failover_loss``), archive the chat."""
        if self._stream is not None:
            self._stream.close()
        if self._tracker is not None:
            self._tracker.finish_conversation()
        chat_id = self.chat_id
        # Era A lists messages only inside the chat: its history is not read again.
        dropped = self._stream is not None and self._stream.drops
        if chat_id is not None and dropped and self._client.era is not Era.A:
            self._count_loss(chat_id)
        if chat_id is not None:
            self._rt.live_chats.pop(chat_id, None)
            self._rt.chat_clients.pop(chat_id, None)
            self._rt.chat_replicas.pop(chat_id, None)
            self._rt.cross_replica.forget(chat_id)
            if self._rt.settings.scenario.chat.archive:
                self._archive(chat_id)
        self.chat_id, self._tracker, self._stream = None, None, None

    def _count_loss(self, chat_id: str) -> None:
        """The committed history against the messages the chat's stream received."""
        assert self._tracker is not None
        rt = self._rt
        try:
            committed = self._client.message_ids(chat_id)
        except RestError as exc:
            rt.recorder.error(http_error("history", exc), time.perf_counter_ns())
            return
        rt.recorder.count("failover_loss", failover_loss(committed, self._tracker.message_ids))

    def _archive(self, chat_id: str) -> None:
        """Archive with the verb of the era the stream showed (A and B differ)."""
        rt = self._rt
        if rt.stream_era is not None:
            self._client.era = rt.stream_era
        try:
            self._client.archive(chat_id)
        except RestError as exc:
            rt.recorder.error(http_error("archive", exc), time.perf_counter_ns())

    def _run_tools(self, turn: Turn) -> None:
        """Era D ``requires_action``: run the client's tools (``client_tool_time``), then post
        their results; a refused post fails the turn at stage ``tool_results``."""
        assert self.chat_id is not None
        calls, turn.tool_calls = turn.tool_calls, []
        rt = self._rt
        gevent.sleep(rt.settings.scenario.chat.client_tool_time.sample(rt.rng))
        try:
            latency = self._client.submit_tool_results(self.chat_id, calls, {"ok": True})
        except RestError as exc:
            self._fail_turn(turn, http_error("tool_results", exc))
            return
        rt.recorder.tool_results_posted(latency)

    def admitted(self, t: int) -> None:
        """The deployment's concurrent-agent gate let the active turn generate at ``t``."""
        turn = self._tracker.active if self._tracker is not None else None
        if turn is not None:
            self._rt.recorder.request("capacity_wait", t - turn.origin)

    def _saw_status(self, status: str, t: int) -> None:
        chat_id = self.chat_id
        if chat_id is None:
            return
        if self._on_status is not None:
            self._on_status(chat_id, status, t)
        if self._replica is not None:
            recorder = self._rt.recorder
            for lag in self._rt.cross_replica.stream_saw(chat_id, status, t):
                recorder.cross_replica_lag(lag)

    def _interrupt(self) -> None:
        assert self.chat_id is not None and self._tracker is not None
        self._tracker.interrupt_requested()
        try:
            self._client.interrupt(self.chat_id)
        except RestError as exc:
            self._rt.recorder.error(http_error("interrupt", exc), time.perf_counter_ns())

    def _fail_turn(self, turn: Turn, info: ErrorInfo) -> None:
        """A turn whose request failed never reached the server: it alone fails."""
        assert self._tracker is not None
        self._ended(self._tracker.reject(turn, info, time.perf_counter_ns()))

    def _count_429(self, error: RestError) -> None:
        if error.kind in ("queue_full", "rate_limited"):
            self._rt.recorder.count(error.kind)  # queue_full or rate_limited


def follow_child(
    rt: Runtime,
    client: ChatClient,
    subagents: Subagents,
    child_id: str,
    spawned_at: int | None,
    replica: int | None = None,
) -> None:
    """Read a sub-agent's own stream, as a user clicking "View agent" (``follow_subagents``):
    one turn from its ``spawn_agent`` call to its terminal status (``ChildRecorder``), within
    the turn timeout; run in a greenlet of its own."""
    tracker = TurnTracker(ChildRecorder(rt.recorder, subagents, child_id), keep_statuses=True)
    tracker.start(spawned_at if spawned_at is not None else time.perf_counter_ns())
    rt.recorder.count("subagents_followed")
    stream = ReconnectingStream(
        rt,
        client,
        child_id,
        tracker,
        replica,
        on_status=lambda status, t: subagents.status(child_id, status, t),
    )
    try:
        if stream.open():
            deadline = time.monotonic() + rt.settings.scenario.chat.turn_timeout
            while tracker.busy and not rt.stopping and time.monotonic() < deadline:
                stream.changed.wait(timeout=0.5)
                stream.changed.clear()
        if tracker.busy:
            tracker.abandon(time.perf_counter_ns())
    finally:
        stream.close()
