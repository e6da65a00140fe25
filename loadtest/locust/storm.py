"""A storm's barriers (``core/storm.py``) held across load processes: users count in, the
coordinator releases them.

The coordinator is the process that knows every user: the master of a distributed run (it
runs none), or the one local process. ``StormUser``\\ s count themselves in (ready, first turn
ended, chat done); on a worker each count goes to the master in a message. The master
broadcasts each release with its wall-clock time, and each worker dates the release on its own
monotonic clock from that (``core.storm.released_at``): the spread a user records, from the
release to its turn's start, includes the message's way to its worker. Workers on this machine
share the master's clock; on others their clock's offset from the master's counts too (NTP
keeps it to milliseconds; a clock behind reads as an instant delivery, never a negative).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import gevent
from gevent.event import Event
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadtest.core import storm as gate
from loadtest.core.profiles import Storm as StormProfile
from loadtest.locust import runtime

COUNT_MESSAGE = "chatload_storm_count"
RELEASE_MESSAGE = "chatload_storm_release"


class StormSide:
    """This process's side of a storm: users count in here and wait here for each release."""

    def __init__(self, profile: StormProfile, turns: int, runner: Any) -> None:
        self.chats = profile.users
        self.delay = profile.turn_start_delay
        #: A follow-up barrier: Coder holds follow-ups only with a delay and turns to follow.
        self.gated = self.delay > 0 and turns > 1
        self._runner = runner
        self._worker = isinstance(runner, WorkerRunner)
        #: The counts, in the coordinator only.
        self.gate = None if self._worker else gate.StormGate(self.chats, self.gated)
        self._events = {gate.START: Event(), gate.FOLLOW_UP: Event()}
        #: When each barrier was released, on this process's monotonic clock.
        self._released: dict[str, int] = {}

    @property
    def finished(self) -> bool:
        """Every chat of the run has ended (known to the coordinator only)."""
        return self.gate is not None and self.gate.finished

    def ready(self) -> None:
        self._count({"ready": 1})

    def initial_ended(self) -> None:
        self._count({"initial_ended": 1})

    def chat_done(self) -> None:
        self._count({"done": 1})

    def wait(self, phase: gate.Phase, timeout: float) -> int | None:
        """The release of ``phase`` (``perf_counter_ns``), or None if it did not come within
        ``timeout`` seconds."""
        if self._events[phase].wait(timeout):
            return self._released[phase]
        return None

    def _count(self, counts: dict[str, int]) -> None:
        if self._worker:
            self._runner.send_message(COUNT_MESSAGE, counts)
        else:
            self._counted(counts)

    def _counted(self, counts: dict[str, Any]) -> None:
        assert self.gate is not None
        due = self.gate.add(
            ready=int(counts.get("ready", 0)),
            initial_ended=int(counts.get("initial_ended", 0)),
            done=int(counts.get("done", 0)),
        )
        for phase in due:
            if phase == gate.START:
                _say(f"storm: all {self.chats} chats ready; creating them now (the first turns)")
                self._release(gate.START)
            else:
                _say(
                    f"storm: all {self.chats} first turns ended; the follow-ups start together "
                    f"in {self.delay:g} s (turn_start_delay)"
                )
                gevent.spawn_later(self.delay, self._release, gate.FOLLOW_UP)

    def _release(self, phase: gate.Phase) -> None:
        if isinstance(self._runner, MasterRunner):
            self._runner.send_message(RELEASE_MESSAGE, {"phase": phase, "wall_ns": time.time_ns()})
        self._mark(phase, time.perf_counter_ns())

    def _on_release(self, msg: Any, **_: Any) -> None:
        """Worker: the master released a barrier."""
        now, wall = time.perf_counter_ns(), time.time_ns()
        phase = gate.START if msg.data.get("phase") == gate.START else gate.FOLLOW_UP
        self._mark(phase, gate.released_at(now, wall, int(msg.data.get("wall_ns") or wall)))

    def _on_count(self, msg: Any, **_: Any) -> None:
        """Master: a worker's users counted in."""
        if isinstance(msg.data, dict):
            self._counted(msg.data)

    def _mark(self, phase: gate.Phase, at: int) -> None:
        self._released.setdefault(phase, at)
        self._events[phase].set()


def _say(line: str) -> None:
    print(f"chatload run: {line}", file=sys.stderr, flush=True)


def install(environment: Environment, rt: runtime.Runtime) -> StormSide | None:
    """A storm run's barriers for this process (its runner exists by now); None for any other
    profile."""
    profile = rt.settings.scenario.load.profile
    if not isinstance(profile, StormProfile):
        return None
    runner = environment.runner
    made = StormSide(profile, rt.settings.scenario.chat.turns, runner)
    if isinstance(runner, MasterRunner):
        runner.register_message(COUNT_MESSAGE, made._on_count)
    elif isinstance(runner, WorkerRunner):
        runner.register_message(RELEASE_MESSAGE, made._on_release)
    environment.chatload_storm = made  # type: ignore[attr-defined]
    return made


def of(environment: Environment) -> StormSide:
    """The storm installed on this Locust environment."""
    made: StormSide | None = getattr(environment, "chatload_storm", None)
    if made is None:
        raise RuntimeError("no storm on this Locust environment (shape 'storm' only)")
    return made
