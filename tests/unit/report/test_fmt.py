"""Numbers as a reader wants them: a unit, a precision that fits the size, ``n/a`` for none."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loadtest.report import fmt


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1234567, "1,234,567"),
        (0, "0"),
        (1234.5, "1,234"),
        (123.4, "123"),
        (12.34, "12.3"),
        (1.234, "1.23"),
        (0.01234, "0.0123"),
        (-12.34, "-12.3"),
    ],
)
def test_numbers_keep_about_three_significant_figures(value: float, text: str) -> None:
    assert fmt.number(value) == text


def test_units_and_none() -> None:
    assert fmt.ms(12.34) == "12.3 ms" and fmt.ms(None) == fmt.NA == "n/a"
    assert fmt.percent(0.0125) == "1.25 %" and fmt.percent(None) == "n/a"
    assert fmt.per_s(250.0) == "250 /s" and fmt.per_s(None) == "n/a"


@pytest.mark.parametrize(
    ("path", "value", "text"),
    [
        ("time_to_first_output.p95", 812.0, "812 ms"),
        ("error_rate", 0.005, "0.50 %"),
        ("retry_rate", 0.25, "25.00 %"),
        ("turns_per_s", 3.5, "3.50 /s"),
        ("goodput_per_s", 1500.0, "1,500 /s"),
        ("turns_failed", 7, "7"),
        ("time_to_first_output.p95", None, "n/a"),
    ],
)
def test_a_figure_is_shown_in_its_own_unit(path: str, value: float | None, text: str) -> None:
    assert fmt.figure(path, value) == text


@pytest.mark.parametrize(
    ("value", "tick"),
    [
        (1500, "1.5k"),
        (2_000_000, "2M"),
        (3e9, "3G"),
        (0.25, "0.25"),
        (999, "999"),
        (-1500, "-1.5k"),
    ],
)
def test_axis_ticks_are_short(value: float, tick: str) -> None:
    assert fmt.short(value) == tick


def test_seconds_add_a_clock_past_a_minute() -> None:
    assert fmt.seconds(59.94) == "59.9 s"
    assert fmt.seconds(125.0) == "125.0 s (2m 05s)"
    assert fmt.seconds(3725.5) == "3,725.5 s (1h 02m 05s)"


def test_a_moment_names_its_zone() -> None:
    assert fmt.when(datetime(2026, 5, 1, 12, 30, 5, tzinfo=UTC)) == "2026-05-01 12:30:05 UTC"
    assert fmt.when(datetime(2026, 5, 1, 12, 30, 5)) == "2026-05-01 12:30:05"
