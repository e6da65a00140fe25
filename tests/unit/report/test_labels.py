"""Plot labels that never cover each other, by geometry alone: width estimates held against
what Chromium measured, and every text of the SVG our writers emit laid out apart (marker
labels of adjacent loads, percentile markers, wrapped legends, long bar labels and values).
The same pages in a real browser: tests/integration/test_report_html.py and test_capacity.py."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadtest.report import svg
from loadtest.report.capacity import CapacityReport, CapacityStep
from loadtest.report.capacity import render_html as render_capacity
from loadtest.report.html import render_html
from loadtest.report.labels import (
    Box,
    fit,
    overlapping,
    place_marker_labels,
    text_box,
    text_width,
)
from tests.unit.report.reports import sample_report

#: (text, font px, semibold, width px) as Chromium drew them in the page's stylesheet with
#: DejaVu Sans, the widest of its fonts (getBBox, November 2026).
MEASURED = [
    ("feasible max", 11, True, 78.9),
    ("breaks: time_to_first_output.p95 < 400ms", 11, True, 260.2),
    ("0123456789", 11, True, 76.5),
    ("abcdefghijklmnopqrstuvwxyz", 11, True, 181.9),
    ("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 11, True, 215.9),
    ("WWWWWWWWWW", 11, True, 121.3),
    ("mmmmmmmmmm", 11, True, 114.6),
    ("p50 p90 p95 p99", 11, True, 104.2),
    ("feasible max", 11, False, 70.9),
    ("0123456789", 11, False, 70.0),
    ("abcdefghijklmnopqrstuvwxyz", 11, False, 161.3),
    ("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 11, False, 192.7),
    ("WWWWWWWWWW", 11, False, 108.9),
    ("status_error / overloaded", 11, False, 138.4),
    ("1.5k", 11, False, 24.5),
    ("time_to_first_output.p95", 12, False, 146.9),
    ("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 12, False, 209.7),
]
SLO = "time_to_first_output.p95 < 400ms"


@pytest.mark.parametrize(("text", "size", "bold", "width"), MEASURED)
def test_a_width_estimate_is_never_short_and_not_much_long(
    text: str, size: int, bold: bool, width: float
) -> None:
    assert width <= text_width(text, size, bold) <= width * 1.15


def test_fit_cuts_a_label_to_its_room_with_an_ellipsis() -> None:
    assert fit("short", 100, 11) == "short"
    cut = fit("a much longer label than the room allows", 100, 11)
    assert cut.endswith("…") and text_width(cut, 11) <= 100
    assert "a much longer label".startswith(cut[:-1])


@dataclass(frozen=True)
class Text:
    text: str
    box: Box


def texts(markup: str) -> list[Text]:
    """Every horizontal ``<text>`` of one SVG plot with its estimated box, in the font size
    and weight the page's stylesheet gives its class (rotated axis titles left out)."""
    legend = re.search(r'<g class="legend">(.*?)</g>', markup, re.S)
    in_legend = set(re.findall(r"<text ([^>]*)>", legend[1])) if legend else set()
    found = []
    for attrs, body in re.findall(r"<text ([^>]*)>(.*?)</text>", markup, re.S):
        if "transform=" in attrs:
            continue
        css = re.search(r'class="([^"]*)"', attrs)
        kind = css[1] if css else ""
        size = 12 if kind == "label" or attrs in in_legend else 14 if kind == "empty" else 11
        x = float(re.search(r'\bx="([^"]+)"', attrs)[1])  # type: ignore[index]
        y = float(re.search(r'\by="([^"]+)"', attrs)[1])  # type: ignore[index]
        anchor = re.search(r'text-anchor="([^"]+)"', attrs)
        text = html.unescape(re.sub(r"<title>.*?</title>", "", body))
        box = text_box(x, y, text, size, anchor[1] if anchor else "start", kind == "marker")
        found.append(Text(text, box))
    return found


def assert_apart(markup: str) -> None:
    """No two texts of the plot overlap, and none runs out of its viewBox."""
    width, height = (float(v) for v in re.search(r'viewBox="0 0 (\S+) (\S+)"', markup).groups())  # type: ignore[union-attr]
    found = texts(markup)
    pairs = [(found[i].text, found[j].text) for i, j in overlapping([t.box for t in found])]
    assert not pairs, pairs
    for t in found:
        assert t.box.x0 >= 0 and t.box.x1 <= width and t.box.y0 >= 0 and t.box.y1 <= height, t


def plots(page: str) -> list[str]:
    return re.findall(r'<svg class="plot".*?</svg>', page, re.S)


def capacity(loads: tuple[float, ...], feasible: float, slo: str = SLO) -> CapacityReport:
    broken = min(load for load in loads if load > feasible)
    steps = [
        CapacityStep(
            load=load,
            repeat=0,
            passed=load <= feasible,
            report=f"steps/{load:g}/report.json",
            figures={
                "time_to_first_output.p50": 80.0 if load <= feasible else 500.0,
                "time_to_first_output.p95": 100.0 if load <= feasible else 900.0,
                "turns_per_s": load / 2,
                "goodput_per_s": load / 2 if load <= feasible else 0.0,
            },
        )
        for load in loads
    ]
    return CapacityReport(
        dimension="users",
        feasible_max=feasible,
        infeasible_min=broken,
        binding_slo=slo,
        boundary="cliff",
        steps=steps,
        stopped_because="adjacent",
        slos=[slo],
    )


@pytest.mark.parametrize(
    ("loads", "feasible"),
    [
        ((2, 4, 8, 16, 17, 32), 16),  # the issue's: 16 feasible, 17 not, mid-plot
        ((2, 4, 8, 16, 17), 16),  # the boundary at the right edge
        ((16, 17, 20, 40, 80), 16),  # at the left edge
        ((1, 2), 1),  # the only two loads
        ((100, 101, 102, 103, 2000), 101),  # adjacent on a wide axis: a pixel apart
    ],
)
def test_the_boundary_labels_of_adjacent_loads_both_read(
    loads: tuple[float, ...], feasible: float
) -> None:
    markups = plots(render_capacity(capacity(loads, feasible)))
    assert len(markups) == 2
    for markup in markups:
        labels = [t.text for t in texts(markup)]
        assert "feasible max" in labels and f"breaks: {SLO}" in labels
        assert_apart(markup)


def test_a_long_slo_is_cut_to_the_plot_and_kept_whole_in_its_tooltip() -> None:
    slo = "time_to_first_output.p95 < 400ms and " * 6 + "more"
    markup = plots(render_capacity(capacity((2, 4, 8, 16, 17), 16, slo)))[0]
    assert f"<title>breaks: {html.escape(slo)}</title>" in markup
    assert_apart(markup)


def test_every_plot_of_the_report_has_its_texts_apart() -> None:
    markups = plots(render_html(sample_report(seeds=(1, 2, 3, 4, 5), frames=12)))
    assert len(markups) == 8
    for markup in markups:
        assert_apart(markup)


def test_a_legend_too_long_for_one_row_wraps_and_the_plot_moves_down() -> None:
    series = [
        svg.Series(f"a rather long series name number {i}", [(0, i), (1, i + 1)]) for i in range(6)
    ]
    markup = svg.line_chart("many", "many", series, "x", "y")
    assert_apart(markup)
    legend = re.search(r'<g class="legend">(.*?)</g>', markup, re.S)
    assert legend
    assert len(set(re.findall(r'<text x="[^"]+" y="([^"]+)"', legend[1]))) >= 2  # rows
    axis = re.search(r'<line class="axis" x1="64" y1="([^"]+)"', markup)
    assert axis and float(axis[1]) > svg.TOP  # the plot area starts below the last row
    assert len([t for t in texts(markup) if t.text.startswith("a rather")]) == 6


def test_percentile_markers_on_neighbouring_bars_take_rows() -> None:
    bars = [svg.Bar(label=str(i), value=10 + i) for i in range(80)]
    markers = [("p50", 40), ("p90", 41), ("p95", 42), ("p99", 43), ("p99.9", 79)]
    markup = svg.bar_chart("crowded", "crowded", bars, "x", "y", markers)
    assert_apart(markup)
    assert [t.text for t in texts(markup) if t.text.startswith("p")] == [m for m, _ in markers]


def test_a_bars_value_that_would_run_off_the_plot_sits_inside_it() -> None:
    bars = [svg.Bar(label="x" * 60, value=123456.0), svg.Bar(label="short", value=3.0)]
    markup = svg.hbar_chart("values", "values", bars, "count")
    assert_apart(markup)
    assert 'class="value inside"' in markup and f"<title>{'x' * 60}</title>" in markup


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=svg.LEFT, max_value=svg.WIDTH - svg.RIGHT),
            st.text(alphabet="abcmW0123 .:<_", min_size=1, max_size=60),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_marker_labels_never_overlap_wherever_the_lines_are(marks: list[tuple[float, str]]) -> None:
    placed = place_marker_labels(marks, svg.LEFT, svg.WIDTH - 4, svg.TOP, 11)
    assert len(placed) == len(marks)
    boxes = [text_box(p.x, p.y, p.text, 11, p.anchor, bold=True) for p in placed]
    assert not overlapping(boxes)
    for box in boxes:
        assert box.x0 + 1e-6 >= svg.LEFT and box.x1 <= svg.WIDTH - 4 + 1e-6


def test_a_typical_turns_timeline_has_its_texts_apart() -> None:
    spans = [
        svg.Span(
            row=f"step {i} with a rather long label", start=i * 10.0, end=i * 10.0 + 8, group="s"
        )
        for i in range(40)
    ] + [svg.Span(row="tool: execute", start=5.0, end=9.0, group="tool")]
    markup = svg.timeline_chart("t", "t", spans, "ms")
    assert_apart(markup)
    # 41 rows: 30 drawn, the rest named.
    assert "11 more rows not drawn" in markup
    assert markup.count('<rect class="bar"') == svg.MAX_ROWS
