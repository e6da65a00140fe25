"""``chatload trace synth``: a trace from a scenario's distributions, seeded and repeatable.

So every shipped scenario can be replayed, and a trace can be made, then edited by hand or
by a script. Pure: a scenario, a seed and the counts in, a ``TraceLines`` out.

- Arrivals: ``chats`` given, they start at uniform random moments of ``duration`` (a Poisson
  process with that many arrivals). Otherwise from ``[load]``: an open loop starts chats at
  ``arrival_rate / turns`` a second (its turns arrive at ``arrival_rate``); a closed loop
  plays its users (spawned at ``spawn_rate``, as many as the shape wants at each moment),
  each starting its next chat when the last one would have ended.
- Turns: ``[chat] turns`` of them, ``think_time`` before each but the first, a prompt's
  length drawn from ``prompts``.
- The answer's shape from ``[sim] config`` (the simulator's defaults where it says nothing):
  ``tool_steps + 1`` steps with ``tool_steps`` ``execute`` calls, output tokens as the
  simulator reports them, and the duration its ``acquire``, ``ttft`` and ``part_gap`` draw.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from loadtest.config import ConfigError, explain
from loadtest.core.profiles import ClosedProfile, Open
from loadtest.scenario import Scenario
from loadtest.sim.config import SimConfig
from loadtest.trace.build import opaque
from loadtest.trace.model import (
    SCHEMA_VERSION,
    ChatLine,
    TraceHeader,
    TraceLines,
    TraceTurn,
    turns_json,
)

#: A synthetic trace's ``started_at``: fixed, so the same seed gives the same bytes, and
#: plainly not a real day.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The simulator's tool (loadtest/sim/player.py runs ``execute`` for each tool step).
SIM_TOOL = "execute"
#: A closed-loop user the shape does not want yet looks again this much later (seconds).
WAKE_S = 1.0
#: At most this many chats, whatever the scenario asks: a trace is a file.
MAX_CHATS = 1_000_000


def sim_config(scenario: Scenario) -> SimConfig:
    """The simulator's settings the scenario runs with; an error names the scenario key."""
    try:
        return SimConfig.model_validate(scenario.sim.config)
    except ValidationError as exc:
        raise ConfigError(
            str(explain(f"scenario {scenario.name}", exc, lambda loc: ("sim", "config", *loc)))
        ) from None


def _turn(scenario: Scenario, sim: SimConfig, rng: random.Random, first: bool) -> TraceTurn:
    steps = sim.tool_steps + 1
    duration_ms = sim.acquire_ms.sample(rng)
    for index in range(steps):
        deltas = sim.parts_per_turn + (sim.reasoning_parts if index == 0 else 0)
        duration_ms += sim.ttft_ms.sample(rng) + sum(sim.part_gap_ms.samples(rng, deltas))
    # The simulator's usage: the configured tokens, else its text's characters / 4.
    per_step = sim.output_tokens
    if per_step is None:
        per_step = max(1, sim.parts_per_turn * sim.part_chars // 4)
    return TraceTurn(
        think_s=0.0 if first else round(scenario.chat.think_time.sample(rng), 3),
        prompt_chars=len(rng.choice(scenario.chat.prompts)),
        steps=steps,
        tools={SIM_TOOL: sim.tool_steps} if sim.tool_steps else {},
        subagents=0,
        output_tokens=per_step * steps,
        duration_s=round(duration_ms / 1000, 3),
    )


@dataclass(frozen=True, slots=True)
class _SynthChat:
    start: float
    #: The turns as JSON (compact: a big trace holds no models) and how long they take.
    turns: str
    length_s: float


def _chat(start: float, scenario: Scenario, sim: SimConfig, rng: random.Random) -> _SynthChat:
    turns = [_turn(scenario, sim, rng, first=i == 0) for i in range(scenario.chat.turns)]
    length = sum(t.think_s + (t.duration_s or 0.0) for t in turns)
    return _SynthChat(start, turns_json(turns), length)


def _open_starts(profile: Open, turns: int, duration: float, rng: random.Random) -> list[float]:
    rate = profile.arrival_rate / turns
    starts: list[float] = []
    t = profile.next_gap(rng, rate)
    while t < duration and len(starts) < MAX_CHATS:
        starts.append(t)
        t += profile.next_gap(rng, rate)
    return starts


def _closed(
    scenario: Scenario, sim: SimConfig, duration: float, rng: random.Random
) -> list[_SynthChat]:
    """Each user's chats back to back, in start order."""
    profile = scenario.load.profile
    assert isinstance(profile, ClosedProfile)
    most = max(profile.users_at(t) for t in _moments(duration)) if duration > 0 else 0
    rate = scenario.load.spawn_rate
    ready = [(user / rate, user) for user in range(most)]
    heapq.heapify(ready)
    chats: list[_SynthChat] = []
    while ready and len(chats) < MAX_CHATS:
        t, user = heapq.heappop(ready)
        if t >= duration:
            continue
        if user >= profile.users_at(t):
            heapq.heappush(ready, (t + WAKE_S, user))  # not wanted yet (ramp, step, spike)
            continue
        chat = _chat(t, scenario, sim, rng)
        chats.append(chat)
        heapq.heappush(ready, (t + max(chat.length_s, 0.001), user))
    chats.sort(key=lambda chat: chat.start)
    return chats


def _moments(duration: float) -> list[float]:
    """Whole seconds across the run (where the closed shapes change)."""
    return [float(s) for s in range(math.ceil(duration) + 1)]


def synth(
    scenario: Scenario, *, seed: int, chats: int | None = None, duration: float | None = None
) -> TraceLines:
    """A trace of ``scenario``: ``chats`` chats over ``duration`` seconds (each defaulting to
    what the scenario's load would start in its run time)."""
    sim = sim_config(scenario)
    span = scenario.load.run_time if duration is None else duration
    if span <= 0:
        raise ConfigError("--duration must be longer than 0")
    rng = random.Random(seed)
    if chats is not None:
        if not 0 <= chats <= MAX_CHATS:
            raise ConfigError(f"--chats must be between 0 and {MAX_CHATS:,}")
        starts = sorted(rng.uniform(0, span) for _ in range(chats))
        planned = [_chat(start, scenario, sim, rng) for start in starts]
    elif isinstance(scenario.load.profile, Open):
        starts = _open_starts(scenario.load.profile, scenario.chat.turns, span, rng)
        planned = [_chat(start, scenario, sim, rng) for start in starts]
    else:
        planned = _closed(scenario, sim, span, rng)
    salt = f"chatload-synth:{seed}".encode()
    lines = [
        ChatLine(
            chat=opaque(salt, str(index)),
            start_s=round(chat.start, 3),
            parent=None,
            workspace=None,
            turns=chat.turns,
            turn_count=scenario.chat.turns,
        )
        for index, chat in enumerate(planned)
    ]
    header = TraceHeader(
        schema_version=SCHEMA_VERSION,
        source=f"synth:{scenario.name} seed={seed}",
        started_at=EPOCH,
        duration_s=round(span, 3),
        chats=len(lines),
    )
    return TraceLines(header, lines)
