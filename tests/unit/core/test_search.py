"""The capacity search, driven by synthetic load -> Step functions: bracket, bisection to the
precision, repeats judged by the monotone fit, cliffs, the edges, and a bounded step count."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadtest.core.search import (
    CLIFF_FACTOR,
    CapacitySearch,
    Outcome,
    SearchStep,
    figure_of,
    jump_over_trend,
    pooled,
)

SLO = "time_to_first_output.p95 < 2000ms"
FIGURE = "time_to_first_output.p95"
Run = Callable[[float, int], SearchStep]


def drive(search: CapacitySearch, run: Run) -> Outcome:
    for _ in range(1000):
        request = search.next()
        if request is None:
            return search.outcome()
        assert search.next() == request  # asking twice changes nothing
        search.record(run(*request))
    raise AssertionError("the search never ended")


def step(load: float, repeat: int, passed: bool, figure: float | None = None) -> SearchStep:
    figures = {} if figure is None else {FIGURE: figure}
    return SearchStep(load, repeat, passed, None if passed else SLO, figures)


def threshold(boundary: float) -> Run:
    """Every SLO holds up to ``boundary``, none above it."""
    return lambda load, repeat: step(load, repeat, load <= boundary)


def bracket_and_bisect_bound(start: float, maximum: float, precision: float, repeats: int) -> int:
    return (
        math.ceil(math.log2(maximum / start))
        + math.ceil(math.log2(1 / precision))
        + 2 * repeats
        + 2
    )


def test_monotone_boundary_in_users() -> None:
    out = drive(CapacitySearch(1, 200, precision=0.05), threshold(37))
    assert (out.feasible_max, out.infeasible_min, out.boundary) == (37, 38, "smooth")
    assert out.binding_slo == SLO
    assert out.done and "adjacent" in out.stopped_because
    loads = [s.load for s in out.steps]
    # Bracket 1..64, then bisection; no load is run twice.
    assert loads[:7] == [1, 2, 4, 8, 16, 32, 64]
    assert len(loads) == len(set(loads)) <= bracket_and_bisect_bound(1, 200, 0.05, 1)
    assert all(load == int(load) for load in loads)


def test_arrival_rate_within_precision() -> None:
    for boundary in (0.7, 3.3, 12.345, 49.9):
        out = drive(CapacitySearch(0.5, 50, precision=0.1, integer=False), threshold(boundary))
        assert out.feasible_max is not None and out.infeasible_min is not None
        assert out.feasible_max <= boundary < out.infeasible_min
        assert (out.infeasible_min - out.feasible_max) / out.feasible_max <= 0.1
        assert (boundary - out.feasible_max) / out.feasible_max <= 0.1
        assert out.boundary == "smooth"


def test_one_lucky_pass_above_the_boundary_does_not_raise_capacity() -> None:
    def lucky(load: float, repeat: int) -> SearchStep:
        # 38 passes on its first run only: a lucky run, outvoted by its repeats.
        return step(load, repeat, load <= 37 or (load == 38 and repeat == 0))

    out = drive(CapacitySearch(1, 200, precision=0.05, repeats=3), lucky)
    assert (out.feasible_max, out.infeasible_min) == (37, 38)
    assert out.pass_fraction[38] == pytest.approx(1 / 3)
    # Both loads at the boundary have their three runs, and 38 was decided by them.
    runs = [(s.load, s.repeat) for s in out.steps]
    assert {(37, r) for r in range(3)} | {(38, r) for r in range(3)} <= set(runs)
    assert out.boundary == "smooth"


def test_majority_pass_across_repeats_is_feasible() -> None:
    def alternating(load: float, repeat: int) -> SearchStep:
        # 38 passes, fails, passes: two of three, the fit calls it feasible.
        return step(load, repeat, load <= 37 or (load == 38 and repeat % 2 == 0))

    out = drive(CapacitySearch(1, 200, precision=0.05, repeats=3), alternating)
    assert (out.feasible_max, out.infeasible_min) == (38, 39)
    assert out.pass_fraction[38] == pytest.approx(2 / 3)


def test_an_unlucky_failure_in_the_bracket_is_revised_by_repeats() -> None:
    def unlucky(load: float, repeat: int) -> SearchStep:
        # 16's first run fails by bad luck: the search bisects below it, then its repeats
        # pass, the verdict moves up, and the search climbs again.
        return step(load, repeat, load <= 37 and not (load == 16 and repeat == 0))

    out = drive(CapacitySearch(1, 200, precision=0.05, repeats=3), unlucky)
    assert (out.feasible_max, out.infeasible_min) == (37, 38)
    # 16's fail is outvoted, and then pooled with the passes above it.
    assert [(s.load, s.passed) for s in out.steps if s.load == 16][:2] == [(16, False), (16, True)]
    assert out.pass_fraction[16] >= 0.5
    assert out.done and "held every SLO" in out.stopped_because


def test_monotone_fit_pools_violators() -> None:
    fit = pooled({10: (3, 3), 20: (0, 1), 30: (1, 1), 40: (0, 3)})
    # 20 failed once, 30 passed once: pooled at 1 of 2; the rest is already monotone.
    assert fit == {10: (3, 3), 20: (1, 2), 30: (1, 2), 40: (0, 3)}
    # Weighted by runs: one pass above three fails is outvoted.
    assert pooled({1: (0, 3), 2: (1, 1)}) == {1: (1, 4), 2: (1, 4)}
    with pytest.raises(ValueError):
        pooled({1: (2, 1)})


def test_cliff_and_smooth() -> None:
    def latency(cliff: bool) -> Run:
        def run(load: float, repeat: int) -> SearchStep:
            # +10% per doubling of load, then 20x at the boundary (or not).
            figure = 100 * 1.1 ** math.log2(load) * (20 if cliff and load > 37 else 1)
            return step(load, repeat, load <= 37, figure)

        return run

    out = drive(CapacitySearch(1, 200, precision=0.05), latency(cliff=True))
    assert (out.feasible_max, out.infeasible_min, out.boundary) == (37, 38, "cliff")
    assert out.jump_over_trend == pytest.approx(20, rel=0.01)
    assert "cliff" in out.stopped_because
    out = drive(CapacitySearch(1, 200, precision=0.05), latency(cliff=False))
    assert out.boundary == "smooth" and out.jump_over_trend == pytest.approx(1)


def test_a_saturating_queue_is_smooth() -> None:
    # Waiting time of a queue near saturation, 1 / (1 - load / 40.5): steep, but a trend.
    def queue(load: float, repeat: int) -> SearchStep:
        return step(load, repeat, load <= 37, 100 / (1 - min(load, 40) / 40.5))

    out = drive(CapacitySearch(1, 200, precision=0.05), queue)
    assert out.boundary == "smooth"
    assert out.jump_over_trend is not None and out.jump_over_trend < CLIFF_FACTOR


def test_jump_over_trend_rule() -> None:
    flat = {1.0: 100.0, 2.0: 100.0, 4.0: 100.0}
    # A flat trend predicts no change: a 3x move is exactly the cliff factor.
    assert jump_over_trend(flat, 5.0, 300.0) == pytest.approx(3.0)
    # A figure linear in load (slope 1) predicts 1.25x from 4 to 5.
    linear = {1.0: 10.0, 2.0: 20.0, 4.0: 40.0}
    assert jump_over_trend(linear, 5.0, 50.0) == pytest.approx(1.0)
    assert jump_over_trend(linear, 5.0, 150.0) == pytest.approx(3.0)
    # A falling figure (throughput breaking a >= SLO) is judged in its own direction.
    assert jump_over_trend({1.0: 100.0, 2.0: 100.0}, 2.5, 10.0) == pytest.approx(10.0)
    # No ratio from zero.
    assert jump_over_trend({1.0: 0.0}, 2.0, 5.0) is None
    assert jump_over_trend({}, 2.0, 5.0) is None
    assert figure_of("error_rate<1%") == "error_rate"
    assert figure_of(SLO) == FIGURE


def test_none_feasible() -> None:
    out = drive(CapacitySearch(5, 200, repeats=3), threshold(2))
    assert out.feasible_max is None
    assert (out.infeasible_min, out.boundary, out.binding_slo) == (5, "none_feasible", SLO)
    assert [(s.load, s.repeat) for s in out.steps] == [(5, 0), (5, 1), (5, 2)]
    assert "even the lowest load 5" in out.stopped_because


def test_never_infeasible() -> None:
    out = drive(CapacitySearch(10, 100, repeats=2), threshold(1e9))
    assert (out.feasible_max, out.infeasible_min, out.boundary) == (100, None, "not_reached")
    # 100 is tried as the last bracket step (not 160), and repeated.
    assert [s.load for s in out.steps] == [10, 20, 40, 80, 100, 100]
    assert "above it" in out.stopped_because


def test_generator_bound_stops_without_claiming_capacity() -> None:
    def weak_generator(load: float, repeat: int) -> SearchStep:
        if load > 50:
            return SearchStep(load, repeat, passed=False, generator_bound=True)
        return step(load, repeat, True)

    search = CapacitySearch(1, 200, precision=0.05)
    out = drive(search, weak_generator)
    assert out.boundary == "generator_bound"
    assert out.feasible_max == 32 and out.infeasible_min is None  # a floor, no more
    assert out.steps[-1].generator_bound and "bottleneck at load 64" in out.stopped_because
    with pytest.raises(ValueError):
        search.record(step(40, 0, True))


def test_generator_bound_during_bisection() -> None:
    def run(load: float, repeat: int) -> SearchStep:
        return SearchStep(load, repeat, load <= 37, generator_bound=load == 48)

    out = drive(CapacitySearch(1, 200, precision=0.05), run)
    assert [s.load for s in out.steps] == [1, 2, 4, 8, 16, 32, 64, 48]
    assert (out.boundary, out.feasible_max, out.infeasible_min) == ("generator_bound", 32, None)


def test_generator_bound_at_start() -> None:
    out = drive(CapacitySearch(1, 200), lambda x, r: SearchStep(x, r, True, generator_bound=True))
    assert (out.boundary, out.feasible_max, len(out.steps)) == ("generator_bound", None, 1)


@pytest.mark.parametrize("repeats", [1, 3])
@pytest.mark.parametrize("boundary", [1, 2, 3, 7, 37, 63, 64, 65, 150, 199])
def test_bounded_steps_for_users(boundary: int, repeats: int) -> None:
    out = drive(CapacitySearch(1, 200, precision=0.05, repeats=repeats), threshold(boundary))
    low, high = out.feasible_max, out.infeasible_min
    assert low is not None and high is not None
    assert low <= boundary < high and ((high - low) / low <= 0.05 or high - low == 1)
    assert len(out.steps) <= bracket_and_bisect_bound(1, 200, 0.05, repeats)


@settings(max_examples=200, deadline=None)
@given(
    start=st.floats(0.1, 10),
    span=st.floats(1, 1000),
    where=st.floats(0, 1),
    precision=st.sampled_from([0.01, 0.05, 0.1, 0.25, 0.5]),
    repeats=st.integers(1, 4),
)
def test_converges_within_precision_in_bounded_steps(
    start: float, span: float, where: float, precision: float, repeats: int
) -> None:
    maximum = start * span
    boundary = start + where * (maximum - start) * 1.2  # sometimes above the maximum
    search = CapacitySearch(
        start, maximum, precision=precision, repeats=repeats, integer=False, max_steps=1000
    )
    out = drive(search, threshold(boundary))
    assert len(out.steps) <= bracket_and_bisect_bound(start, maximum, precision, repeats)
    if boundary >= maximum:
        assert (out.feasible_max, out.boundary) == (maximum, "not_reached")
    else:
        assert out.feasible_max is not None and out.infeasible_min is not None
        assert out.feasible_max <= boundary < out.infeasible_min
        assert (out.infeasible_min - out.feasible_max) / out.feasible_max <= precision


def test_integer_bracket_never_repeats_a_load() -> None:
    out = drive(CapacitySearch(1, 10, growth=1.2), threshold(1e9))
    # 8 x 1.2 rounds to 10; below that, rounding would repeat a load, so +1.
    assert [s.load for s in out.steps] == [1, 2, 3, 4, 5, 6, 7, 8, 10]


def test_max_steps_bounds_the_search() -> None:
    out = drive(CapacitySearch(1, 1000, precision=0.01, max_steps=5), threshold(600))
    assert len(out.steps) == 5 and out.done
    assert "max_steps" in out.stopped_because
    assert out.feasible_max == 16  # what the steps so far prove


def test_max_revisions_bounds_a_noisy_target() -> None:
    # Every load's first run fails and its repeats pass: each repeat moves the verdict.
    def flaky(load: float, repeat: int) -> SearchStep:
        return step(load, repeat, repeat > 0)

    out = drive(CapacitySearch(1, 200, repeats=3, max_revisions=2, max_steps=100), flaky)
    assert out.done and "max_revisions" in out.stopped_because
    assert len(out.steps) < 30


def test_binding_slo_is_the_most_common_first_break() -> None:
    def run(load: float, repeat: int) -> SearchStep:
        if load <= 10:
            return SearchStep(load, repeat, True)
        return SearchStep(load, repeat, False, "error_rate < 1%" if repeat == 1 else SLO)

    out = drive(CapacitySearch(10, 20, repeats=3), run)
    assert (out.feasible_max, out.infeasible_min, out.binding_slo) == (10, 11, SLO)


def test_outcome_while_searching() -> None:
    search = CapacitySearch(1, 200)
    assert search.outcome().stopped_because.startswith("still searching: next is load 1 ")
    search.record(step(1, 0, True))
    out = search.outcome()
    assert (out.done, out.feasible_max, out.boundary) == (False, 1, "not_reached")
    assert search.next() == (2, 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": 0, "maximum": 10}, "greater than 0"),
        ({"start": 10, "maximum": 5}, "at least the starting load"),
        ({"start": 1, "maximum": 10, "precision": 0}, "precision"),
        ({"start": 1, "maximum": 10, "precision": 1}, "precision"),
        ({"start": 1, "maximum": 10, "repeats": 0}, "repeats"),
        ({"start": 1, "maximum": 10, "growth": 1}, "growth"),
        ({"start": 1.5, "maximum": 10}, "whole number"),
        ({"start": 1, "maximum": 10, "max_steps": 0}, "max_steps"),
    ],
)
def test_arguments_are_checked(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CapacitySearch(**kwargs)  # type: ignore[arg-type]
