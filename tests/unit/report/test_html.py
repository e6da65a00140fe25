"""report.html: plots whose marks follow the data, escaped text, a page with no outside
references, the SLO table, warnings, phases and agents."""

from __future__ import annotations

import html
import itertools
import re

import pytest

from loadtest.core.profiles import Storm
from loadtest.core.recorder import Recorder
from loadtest.report.build import build_report, storm_run
from loadtest.report.html import render_html
from loadtest.report.markdown import render_markdown
from loadtest.report.model import ErrorRow, Generator, Report
from loadtest.report.svg import BOTTOM, HEIGHT
from tests.unit.events import MS
from tests.unit.report.reports import (
    NUMBER,
    bar_heights,
    plot,
    sample_report,
    slo,
    vertices,
    with_run,
)
from tests.unit.samples import chat_of_turns, run_info


def test_every_plot_is_drawn(page: str) -> None:
    names = re.findall(r'<svg class="plot" data-plot="([a-z0-9_]+)"', page)
    assert names == [
        "ttft_over_time",
        "e2e_over_time",
        "throughput",
        "turns",
        "ttft_distribution",
        "e2e_distribution",
        "errors",
        "events_per_frame",
    ]


def test_a_line_has_a_vertex_per_measured_point_at_its_height(report: Report, page: str) -> None:
    series = report.timeseries
    assert len(series) >= 5
    bottom = HEIGHT - BOTTOM
    for name, label, field in (
        ("throughput", "events/s", "events_per_s"),
        ("throughput", "frames/s", "frames_per_s"),
        ("turns", "completed", "turns_completed"),
        ("ttft_over_time", "p95", "time_to_first_output_p95"),
        ("e2e_over_time", "p50", "time_to_terminal_status_p50"),
    ):
        values = [getattr(p, field) for p in series]
        measured = [v for v in values if v is not None]
        points = vertices(plot(page, name), label)
        assert len(points) == len(measured), (name, label)
        # Heights are proportional to the values (one scale); x increases with time.
        heights = [bottom - y for _, y in points]
        unit = max(heights) / max(measured)
        assert heights == pytest.approx([v * unit for v in measured], abs=0.15), (name, label)
        assert [x for x, _ in points] == sorted(x for x, _ in points)


def test_a_gap_in_the_series_breaks_the_line(report: Report, page: str) -> None:
    values = [p.time_to_first_output_p50 for p in report.timeseries]
    runs = "".join("x" if v is not None else " " for v in values).split()
    assert len(runs) >= 2  # the sample has a second with no turn end
    d = re.search(r'data-series="p50" d="([^"]*)"', plot(page, "ttft_over_time"))
    assert d and d[1].count("M") == len(runs)


def test_bars_follow_the_histograms(report: Report, page: str) -> None:
    for name, histogram in (
        ("ttft_distribution", "time_to_first_output"),
        ("e2e_distribution", "time_to_terminal_status"),
        ("events_per_frame", "events_per_frame"),
    ):
        rows = report.histograms[histogram]
        heights = bar_heights(plot(page, name))
        assert len(heights) == len(rows), name
        unit = max(heights) / max(count for _, count in rows)
        assert heights == pytest.approx([count * unit for _, count in rows], abs=0.15), name


def test_percentile_markers_stand_on_the_bars_holding_them(report: Report, page: str) -> None:
    rows = report.histograms["time_to_first_output"]
    bounds = [bound for bound, _ in rows]
    ttft = report.latency_ms["time_to_first_output"]
    # Equal value ranges from min to max, every turn in one of them.
    steps = {round(b - a, 6) for a, b in itertools.pairwise([ttft.min, *bounds])}
    assert len(steps) == 1 and bounds[-1] == pytest.approx(ttft.max)
    assert sum(n for _, n in rows) == ttft.count
    svg = plot(page, "ttft_distribution")
    assert re.findall(r'<text class="marker"[^>]*>([^<]*)<', svg) == ["p50", "p95 p99"]
    bars = [float(x) for x in re.findall(rf'<rect class="bar" x="({NUMBER})"', svg)]
    lines = [float(x) for x in re.findall(rf'<line class="marker" x1="({NUMBER})"', svg)]
    width = float(re.findall(rf'<rect class="bar"[^>]*width="({NUMBER})"', svg)[0])
    holding = [next(i for i, b in enumerate(bounds) if b >= p - 1e-9) for p in (ttft.p50, ttft.p95)]
    assert lines == pytest.approx([bars[i] + width / 2 for i in holding], abs=0.15)


def test_errors_and_retries_are_bars_by_kind(report: Report, page: str) -> None:
    svg = plot(page, "errors")
    kinds = {f"{e.stage} / {e.kind}" if e.kind else e.stage for e in report.errors}
    retries = [
        n
        for n in (
            report.counts.retry_events,
            report.counts.turns_retried,
            report.counts.retry_recovered,
            report.counts.retry_exhausted,
        )
        if n
    ]
    # Horizontal bars: a bar's length is its width.
    widths = [float(w) for w in re.findall(rf'<rect class="bar"[^>]*width="({NUMBER})"', svg)]
    assert len(widths) == len(kinds) + len(retries) == 2 + 4
    for kind in kinds:
        assert f">{html.escape(kind)}<" in svg
    # decode errors (18) are three times the status errors (6).
    assert widths[0] == pytest.approx(3 * widths[1], abs=0.2)


def test_a_report_with_nothing_measured_still_has_every_plot() -> None:
    empty = build_report(Recorder().measurement(), run_info())
    page = render_html(empty)
    assert page.count('<svg class="plot"') == 8
    assert "nothing measured" in plot(page, "ttft_over_time")
    assert '<rect class="bar"' not in page


def test_text_from_outside_is_escaped(report: Report) -> None:
    hostile = "<script>alert('x')</script>"
    tampered = with_run(report, scenario=hostile).model_copy(
        update={
            "errors": [
                ErrorRow(
                    stage="stream_event",
                    kind="<b>kind</b>",
                    provider=None,
                    status_code=500,
                    retryable=True,
                    count=3,
                    message='<img src=x onerror="alert(1)">',
                )
            ]
        }
    )
    page = render_html(tampered)
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert html.escape(hostile) in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    summary = render_markdown(tampered)
    assert "<script" not in summary and "&lt;script&gt;" in summary


def test_the_page_needs_no_network(page: str) -> None:
    assert not re.search(r"<script\b", page, re.I)
    assert not re.search(r"<link\b", page, re.I)
    assert not re.search(r"url\(\s*['\"]?https?:", page, re.I)
    assert not re.search(r"@import", page, re.I)
    assert not re.search(r"(?:src|href)\s*=\s*['\"]?(?:https?:)?//", page, re.I)
    assert "<style>" in page


def test_incomplete_runs_say_so_with_their_reasons(report: Report) -> None:
    reasons = ["worker 2 was lost at 41 s", "interrupted <SIGINT>"]
    broken = with_run(report, complete=False, incomplete_reasons=reasons)
    page, summary = render_html(broken), render_markdown(broken)
    for text in (page, summary):
        assert "INCOMPLETE" in text
        for reason in reasons:
            assert html.escape(reason, quote=False) in text
    assert "INCOMPLETE" not in render_html(report)
    assert "INCOMPLETE" not in render_markdown(report)


def test_slo_table_and_verdict(report: Report) -> None:
    page = render_html(slo(report, passed=False))
    table = re.search(r"<h2>SLOs</h2>(.*?)</section>", page, re.S)
    assert table
    rows = re.findall(
        r"<tr><td>(.*?)</td><td class='num'>(.*?)</td><td class='num (\w+)'>", table[1]
    )
    assert rows == [
        ("time_to_first_output.p95 &lt; 2000ms", "13.0 ms", "pass"),
        ("error_rate &lt; 1%", "25.00 %", "fail"),
    ]
    assert '<span class="badge fail">FAIL</span>' in page
    assert '<span class="badge pass">PASS</span>' in render_html(slo(report, passed=True))


def test_headline_and_full_tables(report: Report, page: str) -> None:
    headline = re.search(r"<h2>Headline</h2>(.*?)</section>", page, re.S)
    assert headline
    cells = dict(re.findall(r"<tr><td>(.*?)</td><td class='num'>(.*?)</td></tr>", headline[1]))
    counts = report.counts
    assert cells["turns started"] == str(counts.turns_started)
    assert cells["turns failed"] == str(counts.turns_failed)
    assert cells["error rate"] == f"{report.rates.error_rate * 100:.2f} %"
    assert cells["TTFT p95"] == "13.0 ms"
    assert cells["E2E p99"] == "900 ms"
    assert set(cells) >= {"goodput", "event throughput", "frame throughput", "TTFT p50", "E2E p50"}
    for name in report.latency_ms:
        assert f"<td>{name}" in page
        if name in report.formulas:
            assert html.escape(report.formulas[name]) in page
    for name in report.distributions:
        assert f"<td>{name}</td>" in page
    for row in report.errors:
        assert html.escape(row.message) in page


def test_generator_warnings_are_highlighted(report: Report) -> None:
    warning = "a load process used 97% CPU"
    busy = report.model_copy(
        update={"generator": Generator(cpu_percent_max=97, bottleneck=True, warnings=[warning])}
    )
    page = render_html(busy)
    assert re.search(rf'class="alert warning">.*?<li>{warning}</li>', page, re.S)
    assert 'class="alert warning"' not in render_html(report)
    assert f":warning: {warning}" in render_markdown(busy)


def test_first_turns_beside_follow_ups_and_a_storms_spreads_are_shown() -> None:
    recorder = Recorder(origin_ns=0, origin_epoch_s=run_info().started_at.timestamp())
    chat_of_turns(recorder, [100, 30, 40])
    for spread_ms in (2, 3, 7):
        recorder.request("storm_release_spread", spread_ms * MS)
    recorder.request("storm_follow_up_spread", 4 * MS)
    measured = recorder.measurement()
    plain = build_report(measured, run_info())
    page = render_html(plain)
    phases = re.search(r"<h2>By phase</h2>(.*?)</section>", page, re.S)
    assert phases and "<h3>Storm</h3>" not in phases[1]
    row = re.search(r"<tr><td>time to first output</td>(.*?)</tr>", phases[1])
    assert row and re.findall(r"<td class='num'>(.*?)</td>", row[1]) == [
        "1", "100", "100", "100", "2", "30.0", "40.0", "40.0"
    ]  # fmt: skip
    storm = plain.model_copy(
        update={"storm": storm_run(measured, Storm(users=3, turn_start_delay=1.0), turns=3)}
    )
    section = re.search(r"<h3>Storm</h3>(.*?)</section>", render_html(storm), re.S)
    assert section and "3 chats of 3 turns" in section[1] and "held 1.0 s" in section[1]
    spreads = re.findall(r"<tr><td>(first turns|follow-ups)</td><td class='num'>(\d+)", section[1])
    assert spreads == [("first turns", "3"), ("follow-ups", "1")]
    markdown = render_markdown(storm)
    assert "| time to first output | 100 ms / 100 ms | 30.0 ms / 40.0 ms |" in markdown
    assert "Storm of 3 chats: started after their release: first turns 3.00 ms" in markdown


def test_an_agent_run_shows_its_tools_and_a_typical_turn_as_a_timeline() -> None:
    from tests.unit.agent_events import agent_recorder

    report = build_report(agent_recorder().measurement(), run_info())
    page = render_html(report)
    assert "Agents: steps, tools and sub-agents" in page
    timeline = plot(page, "typical_turn")
    # One bar per segment: each step's wait and streaming, each tool's run.
    bars = re.findall(
        r'<rect class="bar" data-group="([^"]+)" x="([^"]+)"[^>]*width="([^"]+)"', timeline
    )
    assert len(bars) == 10
    groups = [group for group, _, _ in bars]
    assert groups.count("a tool running") == 4 and groups.count("the LLM streaming") == 3
    # Rows: a step's wait and stream share one; each tool has its own, in time order.
    rows = re.findall(r'<text class="tick" x="[^"]+" y="[^"]+" text-anchor="end">([^<]+)', timeline)
    assert rows == [
        "step 1",
        "tool: execute",
        "tool: read_file",
        "step 2, 1 retry",
        "tool: spawn_agent",
        "tool: spawn_agent #2",
        "step 3",
    ]
    # Bars stand where their times are: x grows with the start, width with the length.
    (_, x_exec, w_exec), (_, x_read, w_read) = bars[2], bars[3]
    assert float(x_exec) < float(x_read) and float(w_read) > float(w_exec)
    # The tools table, by name.
    assert re.search(r"<td>spawn_agent</td><td class='num'>2</td><td class='num'>2</td>", page)
    # summary.md lists the tools too.
    assert "| spawn_agent | 2 | 200 ms | 240 ms |" in render_markdown(report)
    # A plain run draws none of it.
    assert "Agents: steps" not in render_html(sample_report())
    assert "### Agents" not in render_markdown(sample_report())
