"""The plots' SVG: round ticks that never cut the axis, a gap for what was not measured, an
empty chart that says so, a timeline that keeps its rows and names the ones it leaves out."""

from __future__ import annotations

import itertools
import re

import pytest

from loadtest.report.svg import (
    MAX_ROWS,
    Bar,
    Series,
    Span,
    bar_chart,
    hbar_chart,
    line_chart,
    step_for,
    timeline_chart,
    x_ticks,
    y_ticks,
)


@pytest.mark.parametrize(
    ("span", "count", "step"), [(10, 5, 2), (7, 5, 2), (100, 4, 25), (0.3, 3, 0.1), (0, 5, 1)]
)
def test_steps_are_round(span: float, count: int, step: float) -> None:
    assert step_for(span, count) == pytest.approx(step)


@pytest.mark.parametrize("top", [0.0, 0.7, 3, 9.99, 10, 57, 1234.5])
def test_y_ticks_start_at_zero_and_reach_the_top(top: float) -> None:
    ticks = y_ticks(top)
    assert ticks[0] == 0 and ticks[-1] >= top and ticks == sorted(ticks)
    assert len(ticks) <= 7
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(gaps) == 1, "evenly spaced"


def test_x_ticks_stay_inside_and_whole_seconds_stay_whole() -> None:
    assert x_ticks(0, 10) == [0, 2, 4, 6, 8, 10]
    assert x_ticks(3.5, 61) == [10, 20, 30, 40, 50, 60]
    assert all(t == int(t) for t in x_ticks(0, 25))


def test_a_line_breaks_where_nothing_was_measured() -> None:
    series = Series("ttft", [(0, 1.0), (1, 2.0), (2, None), (3, 4.0), (4, 5.0)])
    svg = line_chart("p", "P", [series], "s", "ms")
    path = re.search(r'data-series="ttft" d="([^"]*)"', svg)
    assert path and path[1].count("M") == 2 and path[1].count("L") == 2


def test_charts_with_nothing_say_so() -> None:
    assert "nothing measured" in line_chart("p", "P", [Series("a", [(0, None)])], "s", "ms")
    assert "nothing measured" in bar_chart("b", "B", [], "x", "y")
    assert "none recorded" in hbar_chart("h", "H", [], "x")
    assert "none recorded" in timeline_chart("t", "T", [], "ms")


def test_bars_are_as_tall_as_their_values() -> None:
    svg = bar_chart("b", "B", [Bar("a", 10.0), Bar("b", 5.0), Bar("c", 0.0)], "x", "y")
    heights = [float(h) for h in re.findall(r'<rect class="bar"[^>]*height="([\d.]+)"', svg)]
    assert len(heights) == 3 and heights[0] == pytest.approx(2 * heights[1]) and heights[2] == 0


def test_a_timeline_shares_rows_and_names_the_rows_it_leaves_out() -> None:
    spans = [Span("step 1", 0, 10, "wait"), Span("step 1", 10, 30, "stream")]
    spans += [Span(f"tool {i}", 30 + i, 31 + i, "tool") for i in range(MAX_ROWS + 2)]
    svg = timeline_chart("t", "T", spans, "ms")
    rows = re.findall(r'text-anchor="end">([^<]+)', svg)
    assert rows[0] == "step 1" and rows.count("step 1") == 1
    assert len(rows) == MAX_ROWS and "3 more" in svg
