"""Locust users: ``ChatUser`` drives chats, ``StormUser`` drives one in a storm (Coder's
``scaletest chat``), ``StreamWatcher`` watches them, ``OpenLoopUser`` starts turns on a
schedule. Thin: each decides when, ``locust/driver.py`` does the work.

One Locust task is one turn, so stopping (``--stop-timeout``) lets the turn in flight end and
starts no new one. REST calls and ended turns are reported to Locust as requests (through the
environment's own ``events.request``); stream frames go to the recorder only (a Locust event
per frame would cost more than decoding it). Each user is handed the run's ``Runtime`` with
its environment (``runtime.of``), never through a module global.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import gevent
from gevent.pool import Group
from locust import User, constant, task
from locust.env import Environment

from loadtest.client.rest import ChatClient, RestError
from loadtest.core.profiles import Open
from loadtest.core.steps import Subagents
from loadtest.core.storm import FOLLOW_UP, START, Phase
from loadtest.core.tracker import TurnTracker
from loadtest.core.turn import Turn
from loadtest.locust import runtime, storm
from loadtest.locust.driver import Conversation, ReconnectingStream, follow_child
from loadtest.locust.tabs import Tabs
from loadtest.trace.model import TraceChat
from loadtest.trace.replay import prompt

#: A storm user waits for a barrier this long at a time (between waits Locust may stop it).
STORM_WAIT_S = 0.5
#: A storm user whose chat has ended idles this long at a time until the run ends.
STORM_IDLE_S = 1.0


class Reporter:
    """REST calls and ended turns as Locust requests, so Locust's UI, CSVs and HTML show turn
    latency beside the REST calls; REST calls also reach the recorder's counts."""

    def __init__(self, environment: Environment, rt: runtime.Runtime) -> None:
        self._fire = environment.events.request.fire
        self._recorder = rt.recorder

    def request(self, name: str, method: str, ns: int, size: int, error: RestError | None) -> None:
        self._recorder.http_request(
            ok=error is None, connection_error=error is not None and error.status is None
        )
        self._fire(
            request_type=method,
            name=name,
            response_time=ns / 1e6,
            response_length=size,
            exception=error,
            context={},
        )

    def turn(self, turn: Turn) -> None:
        """TTFT and end to end for a turn the server finished, one failure for a failed one.
        Turns cut off by the end of the run are not reported."""
        fire = self._fire
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


def reporter(environment: Environment, rt: runtime.Runtime) -> Reporter:
    """The environment's one reporter (made on first use)."""
    made: Reporter | None = getattr(environment, "chatload_reporter", None)
    if made is None:
        made = Reporter(environment, rt)
        environment.chatload_reporter = made  # type: ignore[attr-defined]
    return made


class _ChatloadUser(User):
    """What every chatload user is handed: the run's runtime, a reporter, a REST client."""

    abstract = True
    wait_time = constant(0)
    #: Whether this kind of user drives chats of its own (and so takes an account).
    drives = True

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self._rt = runtime.of(environment)
        self._reporter = reporter(environment, self._rt)
        identity = self._rt.identity(self.drives)
        self._organization = identity.organization
        #: The replica this user's REST calls and driver streams go to (several only).
        self._replica = identity.replica
        self._client: ChatClient = self._rt.client(identity, self._reporter.request)

    def _prompt(self) -> str:
        return self._rt.settings.scenario.chat.prompt(self._rt.rng)

    def _pause_after_error(self) -> None:
        """Back off a little so a failing target is not hammered in a tight loop."""
        gevent.sleep(self._rt.rng.uniform(0.2, 0.5))


class _ChatDriver(_ChatloadUser):
    """A user that drives chats of its own, one at a time, with its watch sockets (tabs)."""

    abstract = True

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        chat = self._rt.settings.scenario.chat
        #: The children its chats spawn; their streams, when followed, each in a greenlet.
        self._children = Group()
        self._subagents = Subagents(
            self._rt.recorder, self._follow_child if chat.follow_subagents else None
        )
        tabs = chat.watch_sockets_per_user
        self._tabs = (
            Tabs(
                self._rt,
                self._client,
                tabs,
                self._admitted,
                self._rt.placed(self._replica),
                self._subagents,
            )
            if tabs
            else None
        )
        self._conversation = self._new_conversation()

    def _new_conversation(self) -> Conversation:
        tabs = self._tabs
        return Conversation(
            self._rt,
            self._client,
            self._organization,
            self._turn_ended,
            tabs.stream_saw if tabs is not None else None,
            self._replica,
            self._subagents,
        )

    def _follow_child(self, child_id: str, spawned_at: int | None) -> None:
        """``follow_subagents``: the child's stream, read until it is done."""
        self._children.spawn(
            follow_child,
            self._rt,
            self._client,
            self._subagents,
            child_id,
            spawned_at,
            self._replica,
        )

    def _turn_ended(self, turn: Turn) -> None:
        self._reporter.turn(turn)

    def _admitted(self, chat_id: str, t: int) -> None:
        if self._conversation.chat_id == chat_id:
            self._conversation.admitted(t)

    def _finish(self) -> None:
        """Close the conversation and start the next; its chat is no longer the tabs'."""
        chat_id = self._conversation.chat_id
        self._conversation.finish()
        if self._tabs is not None and chat_id is not None:
            self._tabs.forget(chat_id)
        self._conversation = self._new_conversation()

    def on_stop(self) -> None:
        self._conversation.abandon()
        self._conversation.finish()
        if self._tabs is not None:
            self._tabs.close()
        self._client.close()


class ChatUser(_ChatDriver):
    """Creates a chat, streams it, runs its turns, archives it; then starts another.

    Each task first thinks (a yield), then starts a turn only if the run is not stopping.
    Locust kills a user it saw waiting at its next yield, which may come after the user woke:
    with the think first, that kill never lands between a turn's start and its POST.
    """

    @task
    def turn(self) -> None:
        """One turn: create the chat (first turn) or post to it, then wait for its end."""
        rng, chat = self._rt.rng, self._rt.settings.scenario.chat
        conversation = self._conversation
        gevent.sleep(chat.think_time.sample(rng) if conversation.chat_id is not None else 0)
        if self._rt.stopping:
            return
        if conversation.chat_id is None:
            if not conversation.begin(self._prompt()):
                self._finish()  # the chat may exist though its stream would not open
                self._pause_after_error()
                return
        elif conversation.can_edit and rng.random() < chat.edit_ratio:
            if not conversation.edit(self._prompt()):
                self._pause_after_error()
        elif not conversation.post(self._prompt()):
            self._pause_after_error()
        interrupt = rng.random() < chat.interrupt_ratio
        queue_next = rng.random() < chat.queue_ratio and conversation.turns + 1 <= chat.turns
        conversation.follow(interrupt, self._prompt() if queue_next else None)
        if conversation.turns >= chat.turns:
            self._finish()


class StormUser(_ChatDriver):
    """One chat of a storm (``[load] shape = "storm"``), as one runner of Coder's ``coder exp
    scaletest chat`` (``core/storm.py``): it counts itself in at the start barrier; released
    with every other, it creates its chat with the first prompt (the first turn); then it
    sends each next turn the moment the last one ends (no think time, edit, interrupt or
    queueing: Coder's runner does none), after the follow-up barrier when ``turn_start_delay``
    sets one, ``[chat] turns`` in all. A failed turn ends its chat, as it ends Coder's runner.
    Then the user idles; the run ends when every chat has.

    One task is one step (a wait, or one turn), so a stopping run starts no new turn.
    """

    def __init__(self, environment: Environment) -> None:
        self._failed = False
        self._over = False
        super().__init__(environment)
        self._storm = storm.of(environment)

    def on_start(self) -> None:
        self._storm.ready()

    def _turn_ended(self, turn: Turn) -> None:
        super()._turn_ended(turn)
        if turn.outcome == "failed":
            self._failed = True

    @task
    def step(self) -> None:
        if self._over or self._rt.stopping:
            gevent.sleep(STORM_IDLE_S)
        elif self._conversation.chat_id is None:
            self._first_turn()
        else:
            self._follow_up()

    def _released(self, phase: Phase, spread: str) -> bool:
        """Whether ``phase`` was released (and the run goes on); records how long after the
        release this chat's turn starts, under ``spread``."""
        released = self._storm.wait(phase, STORM_WAIT_S)
        if released is None or self._rt.stopping:
            return False
        self._rt.recorder.request(spread, time.perf_counter_ns() - released)
        return True

    def _first_turn(self) -> None:
        if not self._released(START, "storm_release_spread"):
            return
        conversation = self._conversation
        began = conversation.begin(self._prompt())
        if began:
            conversation.follow()
        self._storm.initial_ended()
        self._next_or_end(began)

    def _follow_up(self) -> None:
        conversation = self._conversation
        gate = conversation.turns == 1 and self._storm.gated
        if gate and not self._released(FOLLOW_UP, "storm_follow_up_spread"):
            return
        posted = conversation.post(self._prompt())
        if posted:
            conversation.follow()
        self._next_or_end(posted)

    def _next_or_end(self, sent: bool) -> None:
        """After a turn: the chat ends when its turns are done, or one failed."""
        turns = self._rt.settings.scenario.chat.turns
        if sent and not self._failed and self._conversation.turns < turns:
            return
        self._finish()
        self._over = True
        self._storm.chat_done()

    def on_stop(self) -> None:
        self._conversation.abandon()
        self._conversation.finish()
        if self._tabs is not None:
            self._tabs.close()
        self._children.kill(block=True, timeout=5)
        self._client.close()


class StreamWatcher(_ChatloadUser):
    """A watcher: holds a read-only stream on a chat another user drives, as a second
    browser window on that chat would."""

    fixed_count = 0
    drives = False

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self._stream: ReconnectingStream | None = None

    @task
    def watch(self) -> None:
        chats = self._rt.live_chats
        if not chats:
            gevent.sleep(0.2)
            return
        chat_id = min(chats, key=lambda c: chats[c])
        chats[chat_id] += 1
        rt = self._rt
        driver = rt.chat_replicas.get(chat_id)
        replica = rt.placed(driver)
        across = replica is not None and replica != driver

        def saw(status: str, t: int) -> None:
            for lag in rt.cross_replica.watch_saw(chat_id, status, t, id(self)):
                rt.recorder.cross_replica_lag(lag)

        # A tracker of no turns: it still counts what a watcher sees (era D's thrown-away output).
        watching = TurnTracker(rt.recorder, keep_statuses=across)
        # The chat is its driver's: the watcher is open in the driver's browser, logged in as it.
        client = rt.chat_clients.get(chat_id, self._client)
        stream = self._stream = ReconnectingStream(
            rt, client, chat_id, watching, replica, on_status=saw if across else None
        )
        if stream.open():
            while (stream.is_open or stream.reconnecting) and chat_id in chats:
                stream.changed.wait(timeout=0.5)
                stream.changed.clear()
        stream.close()
        if chat_id in chats:
            chats[chat_id] -= 1

    def on_stop(self) -> None:
        if self._stream is not None:
            self._stream.close()
        self._client.close()


class OpenLoopUser(_ChatloadUser):
    """Starts single-turn chats at this process's share of ``arrival_rate``, on schedule.

    Each arrival gets its own greenlet, so a slow server never delays the next start; the
    turn's intended start is its scheduled time, so latencies include any lag (coordinated
    omission, ``docs/metrics.md``). One task is one arrival: between them the user waits,
    which is where Locust stops it.
    """

    fixed_count = 0

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        profile = self._rt.settings.scenario.load.profile
        assert isinstance(profile, Open), "OpenLoopUser runs open-loop profiles"
        self._profile = profile
        self._pool = Group()
        self._next_at: int | None = None
        #: The children its chats spawn (counted from their spawn_agent results; not followed).
        self._subagents = Subagents(self._rt.recorder)

    @task
    def arrive(self) -> None:
        now = time.perf_counter_ns()
        if self._next_at is None:
            self._next_at = now
        gap = self._profile.next_gap(self._rt.rng, self._rt.settings.process_arrival_rate)
        self._next_at += int(gap * 1e9)
        delay = (self._next_at - now) / 1e9
        if delay > 0:
            gevent.sleep(delay)
        self._pool.spawn(self._one_turn, self._next_at)

    def _one_turn(self, intended: int) -> None:
        conversation = Conversation(
            self._rt,
            self._client,
            self._organization,
            self._reporter.turn,
            replica=self._replica,
            subagents=self._subagents,
        )
        try:
            if conversation.begin(self._prompt(), intended=intended):
                conversation.follow()
        finally:
            conversation.abandon()
            conversation.finish()

    def on_stop(self) -> None:
        """No new arrivals; turns in flight get the stop timeout, the rest are unfinished."""
        self._pool.join(timeout=self._rt.settings.scenario.load.stop_timeout)
        self._pool.kill(block=True, timeout=5)
        self._client.close()


class ReplayUser(_ChatloadUser):
    """Replays this process's share of a trace (``--trace``): each chat starts at its
    recorded offset / speedup in its own greenlet (open loop: a slow server delays no
    arrival; lateness is ``schedule_lag``), and posts each turn its recorded think time
    (/ speedup) after the previous one ended, with a prompt of the recorded size and shape.
    Every chat logs in as the next account (people, not one person, made the trace)."""

    fixed_count = 0

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        plan = self._rt.settings.replay
        assert plan is not None, "ReplayUser replays --trace"
        self._plan = plan
        self._chats = plan.mine(self._rt.slot, self._rt.slots)
        self._pool = Group()
        #: The children its chats spawn (counted from their spawn_agent results; not followed).
        self._subagents = Subagents(self._rt.recorder)
        self._began: int | None = None
        self._pass = 0

    @task
    def replay(self) -> None:
        """One pass over the trace (repeated with --loop); then the user idles."""
        rt, plan = self._rt, self._plan
        if self._began is None:
            self._began = time.perf_counter_ns()
        elif not plan.loop:
            gevent.sleep(1.0)
            return
        pass_start = self._began + int(self._pass * plan.span_s / plan.speedup * 1e9)
        self._pass += 1
        rt.recorder.replay_planned(len(self._chats), sum(len(c.turns) for c in self._chats))
        for chat in self._chats:
            at = pass_start + int(chat.start_s / plan.speedup * 1e9)
            delay = (at - time.perf_counter_ns()) / 1e9
            if delay > 0:
                gevent.sleep(delay)
            if rt.stopping:
                break
            self._pool.spawn(self._one_chat, chat, at)
        end = pass_start + int(plan.span_s / plan.speedup * 1e9)
        if plan.loop and end > time.perf_counter_ns():
            gevent.sleep((end - time.perf_counter_ns()) / 1e9)
        elif not plan.loop:
            self._pool.join()

    def _one_chat(self, chat: TraceChat, intended: int) -> None:
        rt, speedup = self._rt, self._plan.speedup
        client = rt.client(rt.identity(), self._reporter.request)
        recorded = deque(turn.duration_s for turn in chat.turns)

        def ended(turn: Turn) -> None:
            self._reporter.turn(turn)
            planned = recorded.popleft() if recorded else None
            if turn.outcome == "completed" and turn.terminal_at and planned is not None:
                rt.recorder.replay_turn(planned, turn.terminal_at - turn.origin)

        conversation = Conversation(
            rt, client, self._organization, ended, replica=self._replica, subagents=self._subagents
        )
        try:
            children = self._plan.child_tool_calls.get(chat.chat, [])

            def shaped(index: int) -> str:
                turn = chat.turns[index]
                return prompt(turn, children[index] if index < len(children) else 0)

            sent = time.perf_counter_ns()
            began = conversation.begin(shaped(0), intended=intended)
            if conversation.chat_id is not None:
                rt.recorder.replay_chat(True, sent - (self._began or sent))
            if not began:
                return
            conversation.follow()
            for index, turn in enumerate(chat.turns[1:], start=1):
                gevent.sleep(turn.think_s / speedup)
                if rt.stopping or not conversation.post(shaped(index)):
                    break
                conversation.follow()
        finally:
            conversation.abandon()
            conversation.finish()
            rt.recorder.replay_chat(False)
            client.close()

    def on_stop(self) -> None:
        self._pool.join(timeout=self._rt.settings.scenario.load.stop_timeout)
        self._pool.kill(block=True, timeout=5)
        self._client.close()
