"""A storm's barriers (Coder's ``scaletest chat``) as counts: when its turns are released; pure.

What ``coder exp scaletest chat`` does, read in coder/coder ``cli/exp_scaletest_chat.go``,
``scaletest/chat/run.go`` and ``scaletest/chat/config.go``:

1. Start barrier: every runner signals ready (``ReadyWaitGroup.Done``) and blocks on
   ``StartChan``; once all are ready the CLI closes it ("All %d chat runners ready ...,
   creating chats...") and every runner creates its chat at once. The create carries the
   first prompt (``CreateChatRequest.Content``; a chat cannot be created empty: ``Content is
   required.``, protocol §1.1), so the chat's first turn starts with its create: the start
   barrier's release *is* the release of every first turn (phase ``initial``).
2. Each runner streams its chat and, at status ``waiting``, sends the next turn at once (no
   think time) until ``--turns`` turns are done (phase ``follow_up``); an ``error`` status, a
   failed message or a stream that ends early ends that runner.
3. ``--turn-start-delay`` > 0 puts a second barrier between the phases: each runner signals
   once its first turn ended (``TurnStartReadyWaitGroup``; also when it failed, or never got
   there), the CLI waits for all of them, then the delay, then closes ``StartTurnsChan``, and
   every chat's second turn goes at once. The flag's help: "Delay between every chat completing
   its initial turn and starting the follow-up turns". (One older run.go released this gate
   after the creates, before the streams opened; the newest versions gate after the first
   turn, and so does chatload.) With one turn there is nothing to hold.

This module counts; ``locust/storm.py`` carries the counts between load processes and sleeps
the delay. The caller passes times in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

Phase = Literal["start", "follow_up"]
#: The start barrier: every chat's create (its first turn) at once.
START: Final[Phase] = "start"
#: The follow-up barrier (``turn_start_delay`` > 0): every chat's second turn at once.
FOLLOW_UP: Final[Phase] = "follow_up"


@dataclass
class StormGate:
    """The coordinator's count of a storm's ``chats``: ready, first turn ended, done.

    ``add`` answers the barriers that fall due with it, each once: ``start`` when every chat
    is ready, ``follow_up`` (only when ``gated``) when every chat's first turn has ended; the
    follow-ups are released ``turn_start_delay`` after that.
    """

    chats: int
    #: A follow-up barrier: ``turn_start_delay`` > 0 and more than one turn.
    gated: bool = False
    ready: int = 0
    initial_ended: int = 0
    done: int = 0
    due: set[str] = field(default_factory=set)

    def add(self, ready: int = 0, initial_ended: int = 0, done: int = 0) -> list[Phase]:
        """Counts from users (of any process); the barriers due now, each only once."""
        self.ready += ready
        self.initial_ended += initial_ended
        self.done += done
        now: list[Phase] = []
        if START not in self.due and self.ready >= self.chats:
            now.append(START)
        if self.gated and FOLLOW_UP not in self.due and self.initial_ended >= self.chats:
            now.append(FOLLOW_UP)
        self.due.update(now)
        return now

    @property
    def finished(self) -> bool:
        """Every chat has ended (its turns done, or failed): the run is over, as Coder's."""
        return self.done >= self.chats


def released_at(now_ns: int, now_wall_ns: int, release_wall_ns: int) -> int:
    """A release the coordinator dated ``release_wall_ns`` (its wall clock), on this process's
    monotonic clock: now less the time since, so a message's way here counts in the spread.
    Never after now: a clock behind the coordinator's reads as an instant delivery."""
    return now_ns - max(0, now_wall_ns - release_wall_ns)
