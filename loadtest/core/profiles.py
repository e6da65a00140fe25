"""Load profiles as small typed classes: how much load a run asks for at each moment.

Closed loop (users each waiting on their own turns): ``Steady``, ``Ramp``, ``Step``,
``Spike`` and ``Storm`` (Coder's ``scaletest chat``: every chat at once) answer ``users_at(t)``. Open loop (turns at a rate, whatever the server does):
``Open`` answers ``next_gap(rng)``. Each class holds only its own fields and forbids others,
so a scenario that sets a field of another profile is rejected with the field's name. Pure:
the caller passes the time and the random source.
"""

from __future__ import annotations

import math
import random
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The scenario's ``[load]`` keys this profile owns.
    KEYS: ClassVar[frozenset[str]] = frozenset()


class ClosedProfile(Profile):
    users: int = Field(5, ge=1)

    def users_at(self, t: float) -> int:
        """Users wanted ``t`` seconds into the run."""
        return self.users


class Steady(ClosedProfile):
    KEYS = frozenset({"users"})
    kind: Literal["steady"] = "steady"


class Ramp(ClosedProfile):
    """0 -> ``users`` over ``ramp_s``, then held."""

    KEYS = frozenset({"users", "ramp_s"})
    kind: Literal["ramp"] = "ramp"
    ramp_s: float = Field(10.0, gt=0)

    def users_at(self, t: float) -> int:
        return min(self.users, math.ceil(self.users * t / self.ramp_s)) if t > 0 else 0


class Step(ClosedProfile):
    """``step_users`` more every ``step_s``, up to ``users``."""

    KEYS = frozenset({"users", "step_users", "step_s"})
    kind: Literal["step"] = "step"
    step_users: int = Field(1, ge=1)
    step_s: float = Field(10.0, gt=0)

    def users_at(self, t: float) -> int:
        return min(self.users, self.step_users * (1 + int(t // self.step_s)))


class Spike(ClosedProfile):
    """``users``, plus ``spike_users`` from ``spike_at_s`` for ``spike_s``."""

    KEYS = frozenset({"users", "spike_users", "spike_at_s", "spike_s"})
    kind: Literal["spike"] = "spike"
    spike_users: int = Field(0, ge=0)
    spike_at_s: float = Field(10.0, ge=0)
    spike_s: float = Field(5.0, gt=0)

    def users_at(self, t: float) -> int:
        if self.spike_at_s <= t < self.spike_at_s + self.spike_s:
            return self.users + self.spike_users
        return self.users


class Storm(ClosedProfile):
    """Coder's ``coder exp scaletest chat`` load: ``users`` chats, each created at once behind
    a start barrier (the create carries the first prompt, so that is the storm of first
    turns), each sending its next turn the moment the last one ends, ``[chat] turns`` in all.
    ``turn_start_delay`` > 0 (with more than one turn) holds every follow-up until every chat's
    first turn has ended, then that long, then releases them together (``core/storm.py``)."""

    KEYS = frozenset({"users", "turn_start_delay"})
    kind: Literal["storm"] = "storm"
    turn_start_delay: float = Field(0.0, ge=0)


class Open(Profile):
    """Turns started at ``arrival_rate`` per second: Poisson arrivals, or evenly spaced."""

    KEYS = frozenset({"arrival_rate", "arrival"})
    kind: Literal["open"] = "open"
    arrival_rate: float = Field(gt=0)
    arrival: Literal["poisson", "constant"] = "poisson"

    def next_gap(self, rng: random.Random, rate: float | None = None) -> float:
        """Seconds to the next arrival at ``rate`` (this process's share; default: all)."""
        rate = rate or self.arrival_rate
        return rng.expovariate(rate) if self.arrival == "poisson" else 1 / rate


AnyProfile = Annotated[Steady | Ramp | Step | Spike | Storm | Open, Field(discriminator="kind")]

SHAPES: dict[str, type[ClosedProfile]] = {
    "steady": Steady,
    "ramp": Ramp,
    "step": Step,
    "spike": Spike,
    "storm": Storm,
}
#: Every key some profile owns: a key here that the chosen profile does not own is an error.
PROFILES: tuple[type[Profile], ...] = (*SHAPES.values(), Open)
PROFILE_KEYS: frozenset[str] = frozenset(key for profile in PROFILES for key in profile.KEYS)
#: Profile keys that are durations (the scenario parses "10s", "2m" before they get here).
DURATION_KEYS: frozenset[str] = frozenset(
    {"ramp_s", "step_s", "spike_at_s", "spike_s", "turn_start_delay"}
)


def chosen(mode: str, shape: str) -> type[Profile] | None:
    """The profile a ``[load]`` section's mode and shape name (None: an unknown shape)."""
    return Open if mode == "open" else SHAPES.get(shape)
