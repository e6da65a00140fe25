"""report.html's plots: captions escaped, a typical turn's tools on rows of their own where
they overlap, the memory plot from the series."""

from __future__ import annotations

import re

from loadtest.report.html_plots import figure, memory_plot, plots, timeline
from loadtest.report.model import Report, Segment, TypicalTurn


def test_a_caption_is_escaped() -> None:
    out = figure("<b>", "a & b", "<svg/>")
    assert "&lt;b&gt;" in out and "a &amp; b" in out and out.endswith("<svg/></figure>")


def test_every_plot_is_in_the_section(report: Report) -> None:
    section = plots(report)
    assert section.startswith("<section><h2>Plots</h2>")
    assert section.count("<figure>") == section.count('<svg class="plot"') >= 4


def test_no_typical_turn_no_timeline(report: Report) -> None:
    assert timeline(report.model_copy(update={"typical_turn": None})) == ""


def test_overlapping_calls_of_one_tool_get_rows_and_later_ones_reuse_them(report: Report) -> None:
    segments = [
        Segment(kind="wait", label="step 1", start_ms=0, end_ms=100),
        Segment(kind="stream", label="step 1", start_ms=100, end_ms=200),
        Segment(kind="tool", label="execute", start_ms=200, end_ms=400),
        Segment(kind="tool", label="execute", start_ms=250, end_ms=300),  # overlaps: row #2
        Segment(kind="tool", label="execute", start_ms=450, end_ms=500),  # after both: row 1
    ]
    turn = TypicalTurn(duration_ms=500, steps=1, segments=segments)
    out = timeline(report.model_copy(update={"typical_turn": turn}))
    rows = re.findall(r'text-anchor="end">([^<]+)', out)
    assert rows == ["step 1", "tool: execute", "tool: execute #2"]
    assert "500 ms, 1 step;" in out


def test_memory_is_drawn_from_the_series(report: Report) -> None:
    out = memory_plot(report)
    assert 'data-plot="generator_memory"' in out
    empty = report.model_copy(
        update={
            "timeseries": [
                p.model_copy(update={"generator_memory_mb": None}) for p in report.timeseries
            ]
        }
    )
    assert "nothing measured" in memory_plot(empty)
