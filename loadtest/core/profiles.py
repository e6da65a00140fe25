"""Closed-loop load over time: how many users a scenario's shape asks for at second t."""

from __future__ import annotations

import math

from loadtest.scenario import Load


def users_at(load: Load, t: float) -> int | None:
    """Users wanted ``t`` seconds into the run; None once the run time is over."""
    if t >= load.run_time:
        return None
    if load.shape == "ramp":
        return min(load.users, math.ceil(load.users * t / load.ramp_s)) if t > 0 else 0
    if load.shape == "step":
        return min(load.users, load.step_users * (1 + int(t // load.step_s)))
    if load.shape == "spike" and load.spike_at_s <= t < load.spike_at_s + load.spike_s:
        return load.users + load.spike_users
    return load.users
