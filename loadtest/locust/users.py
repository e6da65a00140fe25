"""Locust users: ``ChatUser`` drives chats, ``StreamWatcher`` watches them, ``OpenLoopUser``
starts turns on a schedule.

One Locust task is one turn, so stopping (``--stop-timeout``) lets the turn in flight end and
starts no new one. REST calls are reported to Locust as requests; stream frames go to the
recorder only (a Locust event per frame would cost more than decoding it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import gevent
from gevent.event import Event
from gevent.pool import Group
from locust import User, constant, events, task

from loadtest.client.rest import ApiError, ChatClient
from loadtest.client.ws import HandshakeError, WebSocketStream
from loadtest.core.meter import StreamMeter
from loadtest.core.profiles import Open
from loadtest.core.tracker import TurnTracker
from loadtest.core.turn import ErrorInfo, Stage, Turn
from loadtest.locust import runtime
from loadtest.protocol.eras import era_from_frame

#: Pause before each reconnect attempt after a dropped stream (then the last, repeated).
RECONNECT_BACKOFF_S = (0.1, 0.5, 1.0, 2.0)


def _report_request(name: str, method: str, ns: int, size: int, error: ApiError | None) -> None:
    runtime.current().recorder.http_request(
        ok=error is None, connection_error=bool(error and error.status is None)
    )
    events.request.fire(
        request_type=method,
        name=name,
        response_time=ns / 1e6,
        response_length=size,
        exception=error,
        context={},
    )


def _report_turn(turn: Turn) -> None:
    """A turn as Locust requests, so Locust's UI, CSVs and HTML show turn latency beside the
    REST calls: TTFT and end to end for a turn the server finished, one failure for a failed
    one. Turns cut off by the end of the run are not reported."""
    fire = events.request.fire
    if turn.outcome == "failed":
        error = turn.error
        fire(
            request_type="TURN",
            name="time_to_terminal_status",
            response_time=((turn.terminal_at or turn.t0) - turn.origin) / 1e6,
            response_length=0,
            exception=RuntimeError(f"{error.stage}: {error.message}" if error else "failed"),
            context={},
        )
        return
    if turn.outcome == "unfinished":
        return
    for name, at in (
        ("time_to_first_output", turn.first_output_at),
        ("time_to_terminal_status", turn.terminal_at if turn.terminal_live else None),
    ):
        if at is not None:
            fire(
                request_type="TURN",
                name=name,
                response_time=(at - turn.origin) / 1e6,
                response_length=turn.parts,
                exception=None,
                context={},
            )


def archive_chat(rt: runtime.Runtime, client: ChatClient, chat_id: str) -> None:
    """Archive with the verb of the era the stream showed (A and B differ), errors recorded."""
    if rt.stream_era is not None:
        client.era = rt.stream_era
    try:
        client.archive(chat_id)
    except ApiError as exc:
        rt.recorder.error(_http_error("archive", exc), time.perf_counter_ns())


def _http_error(stage: Stage, error: ApiError) -> ErrorInfo:
    return ErrorInfo(stage, error.message or str(error), kind=error.kind, status_code=error.status)


def new_client(identity: runtime.Identity) -> ChatClient:
    return runtime.current().client(identity, _report_request)


class ChatStream:
    """A chat's stream connection, read in its own greenlet, reconnecting after a drop."""

    def __init__(self, client: ChatClient, chat_id: str, tracker: TurnTracker | None) -> None:
        rt = runtime.current()
        self._runtime = rt
        self._client = client
        self._chat_id = chat_id
        self._tracker = tracker
        self._meter = StreamMeter(rt.recorder, tracker, time.perf_counter_ns)
        self._ws: WebSocketStream | None = None
        self._greenlet: gevent.Greenlet | None = None
        self._closing = False
        self.changed = Event()
        self.reconnects_left = rt.settings.scenario.chat.max_reconnects

    def open(self, reconnect: bool = False) -> bool:
        """Dial the stream; False (with the failure recorded) when it cannot be opened."""
        tracker = self._tracker
        url, headers = self._client.stream_target(
            self._chat_id, tracker.after_id if tracker else None
        )
        ws = WebSocketStream(url, headers)
        recorder = self._runtime.recorder
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
        recorder.stream_opened(time.perf_counter_ns() - start, reconnect=reconnect)
        if tracker is not None:
            tracker.connected()
        self._ws = ws
        self._runtime.open_streams += 1
        if self._greenlet is None or self._greenlet.dead:
            self._greenlet = gevent.spawn(self._read)
        return True

    def _open_failed(self, info: ErrorInfo) -> None:
        t = time.perf_counter_ns()
        if self._tracker is not None and self._tracker.busy:
            self._tracker.fail(info, t)
        else:
            self._runtime.recorder.error(info, t)
        self.changed.set()

    def _read(self) -> None:
        while self._ws is not None:
            ws = self._ws
            frames = ws.frames()
            if self._runtime.settings.era_from_stream and self._runtime.stream_era is None:
                frames = self._learn_era(frames)
            self._meter.read(frames, self._turns_ended)
            self._runtime.open_streams -= 1
            self._ws = None
            if self._closing:
                return
            self._after_close(ws)

    def _turns_ended(self, _: Sequence[Turn]) -> None:
        self.changed.set()

    def _learn_era(self, frames: Iterator[tuple[bytes, int]]) -> Iterator[tuple[bytes, int]]:
        """Envelope or bare array: the first frame settles era A or B for this process."""
        for frame in frames:
            era = era_from_frame(frame[0])
            if era is not None and self._runtime.stream_era is None:
                self._runtime.stream_era = era
                self._runtime.recorder.counts[f"streams_era_{era.value}"] += 1
            yield frame
            yield from frames

    def _after_close(self, ws: WebSocketStream) -> None:
        closed = ws.closed
        tracker = self._tracker
        t = time.perf_counter_ns()
        if closed is not None and not closed.normal:
            info = ErrorInfo("stream_closed", f"closed {closed.code}: {closed.reason}".strip(": "))
            self._runtime.recorder.error(info, t)
        if tracker is None or not tracker.busy:
            self.changed.set()
            return
        while self.reconnects_left > 0 and not self._closing:
            attempt = self._runtime.settings.scenario.chat.max_reconnects - self.reconnects_left
            self.reconnects_left -= 1
            gevent.sleep(RECONNECT_BACKOFF_S[min(attempt, len(RECONNECT_BACKOFF_S) - 1)])
            if self.open(reconnect=True):
                return
        if tracker.busy:
            reason = f"stream closed {closed.code if closed else 1006} mid-turn; reconnects spent"
            tracker.fail(ErrorInfo("stream_closed", reason), t)
        self.changed.set()

    @property
    def is_open(self) -> bool:
        return self._ws is not None

    def close(self) -> None:
        self._closing = True
        ws = self._ws
        if ws is not None:
            ws.close()  # the reader greenlet sees the socket end and lets go of it
        if self._greenlet is not None:
            self._greenlet.join(timeout=2)
            self._greenlet.kill(block=False)


class ChatUser(User):
    """Creates a chat, streams it, runs its turns, archives it; then starts another.

    Each task first thinks (a yield), then starts a turn only if the run is not stopping.
    Locust kills a user it saw waiting at its next yield, which may come after the user woke:
    with the think first, that kill never lands between a turn's start and its POST.
    """

    wait_time = constant(0)

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self._rt = runtime.current()
        self._chat = self._rt.settings.scenario.chat
        identity = self._rt.identity()
        self._organization = identity.organization
        self._client = new_client(identity)
        self._reset()

    def _reset(self) -> None:
        self._chat_id: str | None = None
        self._tracker: TurnTracker | None = None
        self._stream: ChatStream | None = None
        self._turns_done = 0
        self._last_user_message: int | None = None

    # ------------------------------------------------------------ Locust hooks

    @task
    def turn(self) -> None:
        """One turn: create the chat (first turn) or post to it, then wait for its end."""
        rng = self._rt.rng
        low, high = self._chat.think_time
        gevent.sleep(rng.uniform(low, high) if self._chat_id is not None else 0)
        if self._rt.stopping:
            return
        if self._chat_id is None:
            if not self._create_chat():
                return
        elif self._last_user_message and rng.random() < self._chat.edit_ratio:
            self._edit()
        else:
            self._post()
        self._follow_turn()
        self._turns_done += 1
        if self._turns_done >= self._chat.turns:
            self._finish_chat()

    def on_stop(self) -> None:
        if self._tracker is not None:
            self._tracker.abandon(time.perf_counter_ns())
        self._finish_chat()
        self._client.close()

    # ------------------------------------------------------------ a turn's steps

    def _prompt(self) -> str:
        return self._rt.rng.choice(self._chat.prompts)

    def _create_chat(self) -> bool:
        recorder = self._rt.recorder
        tracker = self._tracker = TurnTracker(recorder, _report_turn)
        tracker.start(time.perf_counter_ns())
        try:
            chat, latency = self._client.create_chat(self._prompt(), self._organization)
        except ApiError as exc:
            tracker.fail(_http_error("create_chat", exc), time.perf_counter_ns())
            self._count_429(exc)
            self._tracker = None
            self._pause_after_error()
            return False
        recorder.request("chat_create_latency", latency)
        self._chat_id = chat.id
        self._rt.live_chats[chat.id] = 0
        self._stream = ChatStream(self._client, chat.id, tracker)
        if not self._stream.open():
            self._finish_chat()
            return False
        return True

    def _post(self) -> Turn | None:
        assert self._chat_id is not None and self._tracker is not None
        tracker = self._tracker
        if self._stream is not None and not self._stream.is_open:
            self._stream.reconnects_left = self._chat.max_reconnects
            if not self._stream.open(reconnect=True):
                return None
        turn = tracker.start(time.perf_counter_ns())
        try:
            response, latency = self._client.post_message(self._chat_id, self._prompt())
        except ApiError as exc:
            self._count_429(exc)
            self._fail_turn(turn, _http_error("create_message", exc))
            return None
        self._rt.recorder.message_posted(latency, response.queued)
        if response.message is not None:
            self._last_user_message = response.message.id
        return turn

    def _edit(self) -> None:
        assert self._chat_id is not None and self._tracker is not None
        message_id = self._last_user_message
        assert message_id is not None
        turn = self._tracker.start(time.perf_counter_ns())
        try:
            latency = self._client.edit_message(self._chat_id, message_id, self._prompt())
        except ApiError as exc:
            self._fail_turn(turn, _http_error("create_message", exc))
            return
        self._rt.recorder.request("chat_message_latency", latency)

    def _fail_turn(self, turn: Turn, info: ErrorInfo) -> None:
        """A turn whose POST failed never reached the server: it alone fails."""
        assert self._tracker is not None
        if self._tracker.active is turn:
            self._tracker.fail(info, time.perf_counter_ns())
        else:
            self._rt.recorder.error(info, time.perf_counter_ns())
        self._pause_after_error()

    def _follow_turn(self) -> None:
        """Wait until no turn of the chat is in flight, interrupting or queueing on the way."""
        tracker, stream = self._tracker, self._stream
        if tracker is None or stream is None:
            return
        rng = self._rt.rng
        interrupt = rng.random() < self._chat.interrupt_ratio
        queue_next = (
            rng.random() < self._chat.queue_ratio and self._turns_done + 1 < self._chat.turns
        )
        timeout_ns = int(self._chat.turn_timeout * 1e9)
        while tracker.busy:
            stream.changed.clear()
            active = tracker.active
            if (interrupt or queue_next) and active is not None and active.first_output_at:
                if interrupt:
                    interrupt = False
                    self._interrupt()
                if queue_next:
                    queue_next = False
                    self._post()
                    self._turns_done += 1
                continue
            stream.changed.wait(timeout=0.05 if (interrupt or queue_next) else 1.0)
            tracker.expire(time.perf_counter_ns(), timeout_ns)

    def _interrupt(self) -> None:
        assert self._chat_id is not None and self._tracker is not None
        self._tracker.interrupt_requested()
        try:
            self._client.interrupt(self._chat_id)
        except ApiError as exc:
            self._rt.recorder.error(_http_error("interrupt", exc), time.perf_counter_ns())

    def _count_429(self, error: ApiError) -> None:
        if error.kind is not None:
            self._rt.recorder.counts[error.kind] += 1

    def _pause_after_error(self) -> None:
        """Back off a little so a failing target is not hammered in a tight loop."""
        gevent.sleep(self._rt.rng.uniform(0.2, 0.5))

    def _finish_chat(self) -> None:
        if self._stream is not None:
            self._stream.close()
        if self._tracker is not None:
            self._tracker.finish_conversation()
        if self._chat_id is not None:
            self._rt.live_chats.pop(self._chat_id, None)
            if self._chat.archive:
                archive_chat(self._rt, self._client, self._chat_id)
        self._reset()


class StreamWatcher(User):
    """Holds a read-only stream on a chat another user drives, as a browser tab would."""

    wait_time = constant(0)
    fixed_count = 0

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self._rt = runtime.current()
        self._client = new_client(self._rt.identity())
        self._stream: ChatStream | None = None

    @task
    def watch(self) -> None:
        chats = self._rt.live_chats
        if not chats:
            gevent.sleep(0.2)
            return
        chat_id = min(chats, key=lambda c: chats[c])
        chats[chat_id] += 1
        self._stream = ChatStream(self._client, chat_id, None)
        if self._stream.open():
            while self._stream.is_open and chat_id in chats:
                self._stream.changed.wait(timeout=0.5)
                self._stream.changed.clear()
        self._stream.close()
        if chat_id in chats:
            chats[chat_id] -= 1

    def on_stop(self) -> None:
        if self._stream is not None:
            self._stream.close()
        self._client.close()


class OpenLoopUser(User):
    """Starts single-turn chats at this process's share of ``arrival_rate``, on schedule.

    Each arrival gets its own greenlet, so a slow server never delays the next start; the
    turn's intended start is its scheduled time, so latencies include any lag (coordinated
    omission, ``docs/metrics.md``). One task is one arrival: between them the user waits,
    which is where Locust stops it.
    """

    wait_time = constant(0)
    fixed_count = 0

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self._rt = runtime.current()
        identity = self._rt.identity()
        self._organization = identity.organization
        self._client = new_client(identity)
        self._pool = Group()
        self._next_at: int | None = None

    @task
    def arrive(self) -> None:
        settings = self._rt.settings
        profile = settings.scenario.load.profile
        assert isinstance(profile, Open), "OpenLoopUser runs open-loop profiles"
        now = time.perf_counter_ns()
        if self._next_at is None:
            self._next_at = now
        gap = profile.next_gap(self._rt.rng, settings.process_arrival_rate)
        self._next_at += int(gap * 1e9)
        delay = (self._next_at - now) / 1e9
        if delay > 0:
            gevent.sleep(delay)
        self._pool.spawn(self._one_turn, self._next_at)

    def _one_turn(self, intended: int) -> None:
        recorder = self._rt.recorder
        chat = self._rt.settings.scenario.chat
        tracker = TurnTracker(recorder, _report_turn)
        tracker.start(time.perf_counter_ns(), intended=intended)
        stream: ChatStream | None = None
        chat_id: str | None = None
        try:
            created, latency = self._client.create_chat(
                self._rt.rng.choice(chat.prompts), self._organization
            )
            recorder.request("chat_create_latency", latency)
            chat_id = created.id
            stream = ChatStream(self._client, chat_id, tracker)
            if stream.open():
                timeout_ns = int(chat.turn_timeout * 1e9)
                while tracker.busy:
                    stream.changed.wait(timeout=1.0)
                    stream.changed.clear()
                    tracker.expire(time.perf_counter_ns(), timeout_ns)
        except ApiError as exc:
            tracker.fail(_http_error("create_chat", exc), time.perf_counter_ns())
        finally:
            tracker.abandon(time.perf_counter_ns())
            if stream is not None:
                stream.close()
            tracker.finish_conversation()
        if chat_id is not None and chat.archive:
            archive_chat(self._rt, self._client, chat_id)

    def on_stop(self) -> None:
        """No new arrivals; turns in flight get the stop timeout, the rest are unfinished."""
        self._pool.join(timeout=self._rt.settings.scenario.load.stop_timeout)
        self._pool.kill(block=True, timeout=5)
        self._client.close()
