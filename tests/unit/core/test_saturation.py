"""The over-saturation rule: both turns in flight and TTFT rising, with confidence."""

from __future__ import annotations

from loadtest.core.saturation import WINDOW, Saturation, beyond_recovery, rising


def test_a_steady_noisy_series_is_not_rising_and_a_climbing_one_is() -> None:
    assert not rising([100, 104, 98, 101, 99, 103, 100, 97, 102, 100])
    assert rising([100, 130, 170, 190, 240, 260, 300, 330, 370, 400])
    assert not rising([400, 370, 330, 300, 260, 240, 190, 170, 130, 100])
    assert rising([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])  # perfectly straight


def test_saturation_needs_both_series_rising_over_a_full_window() -> None:
    piling_up = Saturation()
    verdicts = [piling_up.sample(10 + 3 * i, 200.0 + 50 * i) for i in range(WINDOW)]
    assert verdicts[-1] and not any(verdicts[:-1])
    busy_but_keeping_up = Saturation()  # in flight rises (a ramp), TTFT holds level
    assert not any(
        busy_but_keeping_up.sample(10 + 3 * i, 200.0 + (7 if i % 2 else -7))
        for i in range(2 * WINDOW)
    )
    quiet = Saturation()
    assert not any(quiet.sample(5, None) for _ in range(2 * WINDOW))


def test_a_share_bound_is_lost_once_even_perfect_samples_to_come_cannot_save_it() -> None:
    # A p95 (5 % may break it) halfway through, 200 samples so far: ~400 in all.
    assert beyond_recovery(breaches=30, seen=200, allowed=0.05, done=0.5)
    assert not beyond_recovery(breaches=24, seen=200, allowed=0.05, done=0.5)  # within margin
    # Too early to project from, or too few breaches to call.
    assert not beyond_recovery(breaches=100, seen=200, allowed=0.05, done=0.1)
    assert not beyond_recovery(breaches=9, seen=20, allowed=0.0, done=0.9)
    # A max (nothing may break it) is lost at the tenth breach.
    assert beyond_recovery(breaches=10, seen=1000, allowed=0.0, done=0.3)
    # Past the step's end the projection is what was seen.
    assert beyond_recovery(breaches=13, seen=200, allowed=0.05, done=1.4)
