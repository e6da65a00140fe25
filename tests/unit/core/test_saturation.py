"""The over-saturation rule: both turns in flight and TTFT rising, with confidence."""

from __future__ import annotations

from loadtest.core.saturation import WINDOW, Saturation, rising


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
