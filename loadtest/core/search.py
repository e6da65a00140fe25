"""The capacity search behind ``chatload capacity``: the most load a deployment takes while
every SLO holds.

Pure, so that it can be replayed from recorded steps and tested with synthetic ones: the
runner asks ``next()`` for a (load, repeat), runs that step, hands the result to ``record()``,
and reads ``outcome()``. No I/O, no clock, no randomness.

The search:

1. Bracket: ``start``, ``start * growth``, … (``maximum`` itself is the last try) until a load
   fails an SLO.
2. Bisect between the highest feasible and the lowest infeasible load until
   ``(infeasible_min - feasible_max) / feasible_max <= precision``; integer loads (users) also
   stop when the two are adjacent, and never run a load twice outside of repeats.
3. Repeat the two loads that bound the answer (or ``maximum`` / ``start`` when the answer is
   "above" / "none") until each has ``repeats`` runs. If that changes the verdict, go back to 1
   or 2 from the new pair, at most ``max_revisions`` times.

A load's verdict is never one run's: it comes from a monotone fit of every load's pass
fraction against load (``pooled``), and a load is feasible when its fitted
pass fraction is at least one half. With an even ``repeats`` a tie counts as feasible, so
prefer an odd number.

A generator-bound step (the load generator, not the target, was the bottleneck) is no verdict
on the target: the search stops there and claims no capacity, only the floor below it.

The boundary is a "cliff" when the binding SLO's figure moves across it far more than its own
trend over the feasible loads predicts (``jump_over_trend``, ``CLIFF_FACTOR``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Final, Literal

Boundary = Literal["smooth", "cliff", "not_reached", "none_feasible", "generator_bound"]

#: The binding figure moving across the boundary this many times more than its trend predicts
#: makes a cliff. 3x is far outside run-to-run noise of a percentile (tens of percent), and far
#: inside the collapse of a saturated queue or a connection limit (10x and more).
CLIFF_FACTOR: Final = 3.0


@dataclass(frozen=True)
class SearchStep:
    """What the runner reports after one step: one run at one load."""

    load: float
    #: 0 for a load's first run, 1 for its first repeat, …
    repeat: int
    #: Every SLO held.
    passed: bool
    #: The first SLO expression that failed, if any.
    broken: str | None = None
    #: SLO figure paths (``time_to_first_output.p95``) -> observed values, plus
    #: ``goodput_per_s`` and ``turns_per_s``.
    figures: dict[str, float] = field(default_factory=dict)
    #: The load generator, not the target, was the bottleneck: no verdict on the target.
    generator_bound: bool = False
    stopped_early: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What the steps so far prove; final once ``CapacitySearch.next()`` is None."""

    #: The highest load the fit calls feasible (with ``generator_bound``: a floor, not a
    #: capacity: the highest feasible load below the generator-bound step).
    feasible_max: float | None
    #: The lowest load the fit calls infeasible (None with ``generator_bound``).
    infeasible_min: float | None
    #: The SLO expression that broke first at ``infeasible_min`` (most often, over its runs).
    binding_slo: str | None
    boundary: Boundary
    stopped_because: str
    steps: tuple[SearchStep, ...]
    #: ``next()`` has nothing more to run.
    done: bool
    #: Every load's fitted pass fraction (the verdict's basis), in load order.
    pass_fraction: dict[float, float]
    #: The binding figure's move across the boundary over its trend's prediction (a cliff at
    #: ``CLIFF_FACTOR`` or more); None when there is no boundary or the figure can't tell.
    jump_over_trend: float | None = None


def pooled(runs: Mapping[float, tuple[int, int]]) -> dict[float, tuple[int, int]]:
    """Each load's pass count fitted non-increasing in load: isotonic regression by pool
    adjacent violators, weighted by runs, so a lucky pass above failing loads is pooled with
    them, not believed. ``runs`` maps load -> (passes, runs); the answer, load -> (passes,
    runs) of the pooled block it ends up in: integer counts, so the >= 1/2 verdict is
    exact."""
    blocks: list[tuple[int, int, list[float]]] = []
    for load in sorted(runs):
        passes, total = runs[load]
        if total <= 0 or not 0 <= passes <= total:
            raise ValueError(f"load {load:g}: {passes} passes of {total} runs")
        block = (passes, total, [load])
        # A block passing more often than the one below it violates monotonicity: pool them.
        while blocks and blocks[-1][0] * block[1] < block[0] * blocks[-1][1]:
            below = blocks.pop()
            block = (below[0] + block[0], below[1] + block[1], below[2] + block[2])
        blocks.append(block)
    return {load: (passes, total) for passes, total, loads in blocks for load in loads}


def jump_over_trend(feasible: Mapping[float, float], above: float, figure: float) -> float | None:
    """How many times more a figure moved from the highest feasible load to ``above`` (where
    it is ``figure``) than its trend over ``feasible`` (load -> figure) predicts.

    The trend is the steepest log-log slope (elasticity) between neighbouring feasible loads,
    in the direction the figure moved across the boundary, and at least flat: it predicts
    ``f(above) = f(feasible_max) * (above / feasible_max) ** slope``. Taking the steepest
    slope is generous to the trend, so a queue's smooth blow-up near saturation is no cliff,
    and the load ratio scales it, so a wide last bracket is not mistaken for one either.
    None when the ratio can't be taken (no positive figure on both sides)."""
    points = sorted((x, f) for x, f in feasible.items() if f > 0 and math.isfinite(f))
    if not points or not (figure > 0 and math.isfinite(figure)):
        return None
    last_load, last = points[-1]
    if above <= last_load:
        raise ValueError(f"the infeasible load {above:g} is not above {last_load:g}")
    jump = math.log(figure / last)
    direction = 1.0 if jump >= 0 else -1.0
    slope = max(
        [0.0]
        + [
            direction * math.log(fb / fa) / math.log(xb / xa)
            for (xa, fa), (xb, fb) in pairwise(points)
        ]
    )
    return math.exp(direction * jump - slope * math.log(above / last_load))


def figure_of(expr: str) -> str:
    """The figure path of an SLO expression: ``time_to_first_output.p95 < 2s`` -> its left side."""
    cut = min((i for i, c in enumerate(expr) if c in "<>="), default=len(expr))
    return expr[:cut].strip()


def _median(values: Iterable[float]) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@dataclass(frozen=True)
class _State:
    """The verdict the steps so far support (generator-bound steps left out of the fit)."""

    runs: dict[float, tuple[int, int]]
    pooled: dict[float, tuple[int, int]]
    feasible_max: float | None
    infeasible_min: float | None
    #: The first generator-bound step at or below the boundary, if any.
    generator_bound: SearchStep | None


class CapacitySearch:
    """Drives a capacity search one step at a time (see the module's docstring).

    ``record()`` accepts any step, so a search can be resumed by replaying recorded steps."""

    def __init__(
        self,
        start: float,
        maximum: float,
        *,
        precision: float = 0.1,
        repeats: int = 1,
        integer: bool = True,
        growth: float = 2.0,
        max_steps: int = 30,
        max_revisions: int = 3,
    ) -> None:
        if not (math.isfinite(start) and start > 0):
            raise ValueError(f"the starting load must be greater than 0, got {start:g}")
        if not (math.isfinite(maximum) and maximum >= start):
            raise ValueError(
                f"the maximum load must be at least the starting load {start:g}, got {maximum:g}"
            )
        if integer and (start != int(start) or maximum != int(maximum)):
            raise ValueError(
                f"a count of users is a whole number, got {start:g} to {maximum:g}; "
                "use an arrival rate for fractional loads"
            )
        if not 0 < precision < 1:
            raise ValueError(
                f"the precision is a fraction between 0 and 1 (e.g. 0.1 for 10%), got {precision:g}"
            )
        if repeats < 1:
            raise ValueError(f"repeats must be at least 1 (1: no extra runs), got {repeats}")
        if not (math.isfinite(growth) and growth > 1):
            raise ValueError(f"the bracket's growth factor must be greater than 1, got {growth:g}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}")
        if max_revisions < 0:
            raise ValueError(f"max_revisions must be 0 or more, got {max_revisions}")
        self.start = float(start)
        self.maximum = float(maximum)
        self.precision = precision
        self.repeats = repeats
        self.integer = integer
        self.growth = growth
        self.max_steps = max_steps
        self.max_revisions = max_revisions
        self._steps: list[SearchStep] = []
        #: Times a repeat moved the verdict.
        self._revisions = 0

    # -- the runner's side -------------------------------------------------------------

    def next(self) -> tuple[float, int] | None:
        """The next (load, repeat index) to run; None when the search is over. Asking twice
        without recording gives the same answer."""
        return self._plan(self._state())[0]

    def record(self, step: SearchStep) -> None:
        """Take one step's result."""
        if not (math.isfinite(step.load) and step.load > 0):
            raise ValueError(f"a step's load must be greater than 0, got {step.load:g}")
        before = self._state()
        if self._plan(before)[0] is None:
            raise ValueError("the search is over; it takes no more steps")
        self._steps.append(step)
        after = self._state()
        verdict = (before.feasible_max, before.infeasible_min)
        if step.load in before.runs and verdict != (after.feasible_max, after.infeasible_min):
            self._revisions += 1

    def outcome(self) -> Outcome:
        """What the steps so far prove."""
        state = self._state()
        request, why = self._plan(state)
        feasible, infeasible = state.feasible_max, state.infeasible_min
        binding: str | None = None
        jump: float | None = None
        boundary: Boundary
        if state.generator_bound is not None:
            bound = state.generator_bound.load
            below = [x for x in state.pooled if x < bound and self._feasible(state, x)]
            feasible, infeasible = max(below, default=None), None
            boundary = "generator_bound"
        elif infeasible is None:
            boundary = "not_reached"
        elif feasible is None:
            boundary = "none_feasible"
            binding = self._binding(infeasible)
        else:
            binding = self._binding(infeasible)
            jump = self._jump(state, binding)
            boundary = "cliff" if jump is not None and jump >= CLIFF_FACTOR else "smooth"
        if request is not None:
            why = f"still searching: next is load {self._fmt(request[0])} (repeat {request[1]})"
        elif boundary == "cliff" and jump is not None:
            why += (
                f"; a cliff: {figure_of(binding or '')} moved {jump:.1f}x more across it "
                "than its trend predicts"
            )
        return Outcome(
            feasible_max=feasible,
            infeasible_min=infeasible,
            binding_slo=binding,
            boundary=boundary,
            stopped_because=why,
            steps=tuple(self._steps),
            done=request is None,
            pass_fraction={x: p / n for x, (p, n) in sorted(state.pooled.items())},
            jump_over_trend=jump,
        )

    # -- the verdict -------------------------------------------------------------------

    def _state(self) -> _State:
        runs: dict[float, tuple[int, int]] = {}
        for step in self._steps:
            if not step.generator_bound:
                passes, total = runs.get(step.load, (0, 0))
                runs[step.load] = (passes + step.passed, total + 1)
        fitted = pooled(runs)
        feasible = [x for x, (p, n) in fitted.items() if 2 * p >= n]
        infeasible = [x for x, (p, n) in fitted.items() if 2 * p < n]
        feasible_max, infeasible_min = max(feasible, default=None), min(infeasible, default=None)
        # Above the lowest infeasible load a generator-bound step changes nothing.
        bound = next(
            (
                s
                for s in self._steps
                if s.generator_bound and (infeasible_min is None or s.load <= infeasible_min)
            ),
            None,
        )
        return _State(runs, fitted, feasible_max, infeasible_min, bound)

    @staticmethod
    def _feasible(state: _State, load: float) -> bool:
        passes, total = state.pooled[load]
        return 2 * passes >= total

    def _plan(self, state: _State) -> tuple[tuple[float, int] | None, str]:
        """The next request, or None and the sentence that says why the search stopped."""
        low, high = state.feasible_max, state.infeasible_min
        if state.generator_bound is not None:
            step = state.generator_bound
            floor = [x for x in state.pooled if x < step.load and self._feasible(state, x)]
            held = f"; the target held up to {self._fmt(max(floor))}" if floor else ""
            return None, (
                f"the load generator, not the target, was the bottleneck at load "
                f"{self._fmt(step.load)} (repeat {step.repeat}): that is no verdict on the "
                f"target, so no capacity is claimed{held}"
            )
        request, why = self._request(state, low, high)
        if request is None:
            return None, why
        if self._revisions > self.max_revisions:
            return None, (
                f"the repeats moved the boundary {self._revisions} times (max_revisions "
                f"{self.max_revisions}): the target is too noisy here to narrow it further; "
                f"the verdict is the monotone fit of every step so far"
            )
        if len(self._steps) >= self.max_steps:
            return None, (
                f"stopped at max_steps ({self.max_steps} steps) before the search was done; "
                f"the verdict is the monotone fit of every step so far"
            )
        return request, ""

    def _request(
        self, state: _State, low: float | None, high: float | None
    ) -> tuple[tuple[float, int] | None, str]:
        if high is None:  # nothing failed (yet): climb
            if low is None:
                return (self.start, 0), ""
            if low < self.maximum:
                return (self._grow(low), 0), ""
            pending = self._repeat(state, [low])
            if pending is not None:
                return pending, ""
            return None, (
                f"even the maximum load {self._fmt(low)} held every SLO "
                f"({state.runs[low][1]} runs): the capacity is above it"
            )
        if low is None:  # nothing passed
            if high > self.start and self.start not in state.runs:
                return (self.start, 0), ""
            pending = self._repeat(state, [high])
            if pending is not None:
                return pending, ""
            return None, (
                f"even the lowest load {self._fmt(high)} broke an SLO "
                f"({self._binding(high) or 'no SLO named'})"
            )
        if not self._close(low, high):
            return (self._between(low, high), 0), ""
        pending = self._repeat(state, [low, high])
        if pending is not None:
            return pending, ""
        close = (
            "adjacent"
            if self.integer and high - low <= 1
            else f"within the precision of {self.precision * 100:g}%"
        )
        return None, (
            f"{self._fmt(low)} held every SLO and {self._fmt(high)} broke "
            f"{self._binding(high) or 'an SLO'} ({close}; {state.runs[low][1]} and "
            f"{state.runs[high][1]} runs)"
        )

    def _repeat(self, state: _State, loads: list[float]) -> tuple[float, int] | None:
        """The next repeat of the load with the fewest runs, the lower first; None once each
        has ``repeats`` runs."""
        load = min(loads, key=lambda x: state.runs[x][1])
        done = state.runs[load][1]
        return (load, done) if done < self.repeats else None

    def _grow(self, load: float) -> float:
        grown = load * self.growth
        if self.integer:  # round half up, and always at least one user more
            grown = max(load + 1, math.floor(grown + 0.5))
        return min(self.maximum, float(grown))

    def _between(self, low: float, high: float) -> float:
        mid = (low + high) / 2
        # Not adjacent (``_close``), so the floor is strictly between: a new load.
        return float(math.floor(mid)) if self.integer else mid

    def _close(self, low: float, high: float) -> bool:
        return (high - low) / low <= self.precision or (self.integer and high - low <= 1)

    def _binding(self, load: float) -> str | None:
        """The SLO that broke first at ``load``, the most often over its runs (ties: the
        earliest)."""
        broken = Counter(
            s.broken
            for s in self._steps
            if s.load == load and not s.passed and not s.generator_bound and s.broken
        )
        return broken.most_common(1)[0][0] if broken else None

    def _jump(self, state: _State, binding: str | None) -> float | None:
        """``jump_over_trend`` of the binding figure (the median of each load's runs)."""
        if binding is None or state.infeasible_min is None:
            return None
        figure = figure_of(binding)
        by_load: dict[float, list[float]] = {}
        for s in self._steps:
            if not s.generator_bound and figure in s.figures:
                by_load.setdefault(s.load, []).append(s.figures[figure])
        medians = {x: _median(v) for x, v in by_load.items()}
        feasible = {
            x: m
            for x, m in medians.items()
            if m is not None and x in state.pooled and self._feasible(state, x)
        }
        above = medians.get(state.infeasible_min)
        if above is None:
            return None
        return jump_over_trend(feasible, state.infeasible_min, above)

    def _fmt(self, load: float) -> str:
        return str(int(load)) if self.integer and load == int(load) else f"{load:g}"
