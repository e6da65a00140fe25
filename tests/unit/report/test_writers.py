"""The report writers: HTML plots whose marks follow the data, escaped text, a page with no
outside references; markdown, CSV and the files a run leaves; ``chatload report``."""

from __future__ import annotations

import csv
import html
import io
import itertools
import re
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.core.profiles import Storm
from loadtest.core.recorder import Recorder
from loadtest.core.slo import SloCheck, SloResult
from loadtest.report.build import build_report, storm_run
from loadtest.report.files import write_json, write_report_files
from loadtest.report.html import render_html
from loadtest.report.markdown import render_markdown
from loadtest.report.model import ErrorRow, Generator, Report, SeriesPoint
from loadtest.report.svg import BOTTOM, HEIGHT
from loadtest.report.timeseries_csv import render_timeseries_csv
from tests.unit.events import MS
from tests.unit.samples import chat_of_turns, feed_some, run_info

REPO = Path(__file__).resolve().parents[3]
NUMBER = r"-?\d+(?:\.\d+)?"


def sample_report(seeds: tuple[int, ...] = (1, 2, 3), frames: int = 6) -> Report:
    """A real run's report: turns that fail and retry, bad frames, a series with gaps."""
    recorder = Recorder(origin_ns=0, origin_epoch_s=run_info().started_at.timestamp())
    for seed in seeds:
        feed_some(recorder, seed, frames)
    return build_report(recorder.snapshot(), run_info(duration=8.0))


def with_run(report: Report, **changes: object) -> Report:
    return report.model_copy(update={"run": report.run.model_copy(update=changes)})


def plot(page: str, name: str) -> str:
    """The one ``<svg>`` of a named plot."""
    found = re.findall(rf'<svg class="plot" data-plot="{name}".*?</svg>', page, re.S)
    assert len(found) == 1, f"plot {name}: {len(found)} found"
    return found[0]


def vertices(svg: str, series: str) -> list[tuple[float, float]]:
    match = re.search(rf'<path class="line" data-series="{re.escape(series)}" d="([^"]*)"', svg)
    assert match, f"no line for {series}"
    return [(float(x), float(y)) for x, y in re.findall(rf"[ML]({NUMBER}),({NUMBER})", match[1])]


def bar_heights(svg: str) -> list[float]:
    return [float(h) for h in re.findall(rf'<rect class="bar"[^>]*height="({NUMBER})"', svg)]


@pytest.fixture(scope="module")
def report() -> Report:
    return sample_report()


@pytest.fixture(scope="module")
def page(report: Report) -> str:
    return render_html(report)


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
    empty = build_report(Recorder().snapshot(), run_info())
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


def slo(report: Report, passed: bool) -> Report:
    checks = [
        SloCheck(expr="time_to_first_output.p95 < 2000ms", observed=13.0, passed=True),
        SloCheck(expr="error_rate < 1%", observed=0.25, passed=passed),
    ]
    return report.model_copy(update={"slo": SloResult(passed=passed, checks=checks)})


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


def test_markdown_summary(report: Report) -> None:
    failing = render_markdown(slo(report, passed=False))
    title = failing.splitlines()[0]
    assert title.startswith("## ") and title.endswith("FAIL") and "smoke" in title
    assert render_markdown(slo(report, passed=True)).splitlines()[0].endswith("PASS")
    assert "| time_to_first_output.p95 &lt; 2000ms | 13.0 ms | PASS |" in failing
    assert "| error_rate &lt; 1% | 25.00 % | FAIL |" in failing
    assert f"| turns started | {report.counts.turns_started} |" in failing
    assert "| decode |" in failing and "| status_error | generic |" in failing
    # With no SLO, the verdict is the exit code's: a failed turn fails the run.
    assert report.counts.turns_failed and render_markdown(report).splitlines()[0].endswith("FAIL")


def test_markdown_cells_cannot_break_the_table(report: Report) -> None:
    row = ErrorRow(
        stage="create_chat",
        kind=None,
        provider=None,
        status_code=502,
        retryable=None,
        count=1,
        message="bad | gateway\nsecond line",
    )
    summary = render_markdown(report.model_copy(update={"errors": [row]}))
    line = next(line for line in summary.splitlines() if line.startswith("| create_chat"))
    assert line == "| create_chat |  | 502 | 1 | bad \\| gateway second line |"


def test_timeseries_csv(report: Report) -> None:
    text = render_timeseries_csv(report)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(SeriesPoint.model_fields)
    assert len(rows) == 1 + len(report.timeseries)
    for row, point in zip(rows[1:], report.timeseries, strict=True):
        data = dict(zip(rows[0], row, strict=True))
        assert float(data["t"]) == point.t
        assert float(data["events_per_s"]) == point.events_per_s
        assert int(data["turns_completed"]) == point.turns_completed
        p50 = point.time_to_first_output_p50
        assert data["time_to_first_output_p50"] == ("" if p50 is None else str(p50))


def test_report_files_are_written_and_round_trip(report: Report, tmp_path: Path) -> None:
    paths = write_report_files(report, tmp_path / "out")
    names = ["report.json", "summary.md", "report.html", "timeseries.csv"]
    assert paths == [tmp_path / "out" / name for name in names]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(names)
    again = Report.model_validate_json((tmp_path / "out" / "report.json").read_bytes())
    assert again == report
    assert (tmp_path / "out" / "report.html").read_text() == render_html(report)
    fewer = write_report_files(report, tmp_path / "less", html=False, csv=False)
    assert [p.name for p in fewer] == ["report.json", "summary.md"]
    assert sorted(p.name for p in (tmp_path / "less").iterdir()) == ["report.json", "summary.md"]


def chatload(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadtest.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def test_report_command_renders_beside_the_json(report: Report, tmp_path: Path) -> None:
    source = tmp_path / "report.json"
    write_json(report, source)
    done = chatload("report", source)
    assert done.returncode == 0, done.stderr
    written = {tmp_path / n for n in ("report.html", "summary.md", "timeseries.csv")}
    assert {Path(line) for line in done.stdout.split()} == written
    assert (tmp_path / "report.html").read_text() == render_html(report)
    assert (tmp_path / "timeseries.csv").read_text() == render_timeseries_csv(report)

    only = tmp_path / "only"
    done = chatload("report", source, "--html", only / "x.html", "--markdown", only / "s.md")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in only.iterdir()) == ["s.md", "x.html"]
    assert (only / "s.md").read_text() == render_markdown(report)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a chatload report"),
        (b'{"schema_version": 2}', "schema_version 2"),
        (b'{"schema_version": 1, "run": {}}', "not a valid chatload report"),
    ],
)
def test_report_command_rejects_bad_input(
    tmp_path: Path, content: bytes | None, problem: str
) -> None:
    path = tmp_path / "report.json"
    if content is not None:
        path.write_bytes(content)
    done = chatload("report", path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and problem in lines[0], done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == (
        [] if content is None else ["report.json"]
    )


def test_first_turns_beside_follow_ups_and_a_storms_spreads_are_shown() -> None:
    recorder = Recorder(origin_ns=0, origin_epoch_s=run_info().started_at.timestamp())
    chat_of_turns(recorder, [100, 30, 40])
    for spread_ms in (2, 3, 7):
        recorder.request("storm_release_spread", spread_ms * MS)
    recorder.request("storm_follow_up_spread", 4 * MS)
    snap = recorder.snapshot()
    plain = build_report(snap, run_info())
    page = render_html(plain)
    phases = re.search(r"<h2>By phase</h2>(.*?)</section>", page, re.S)
    assert phases and "<h3>Storm</h3>" not in phases[1]
    row = re.search(r"<tr><td>time to first output</td>(.*?)</tr>", phases[1])
    assert row and re.findall(r"<td class='num'>(.*?)</td>", row[1]) == [
        "1", "100", "100", "100", "2", "30.0", "40.0", "40.0"
    ]  # fmt: skip
    storm = plain.model_copy(
        update={"storm": storm_run(snap, Storm(users=3, turn_start_delay=1.0), turns=3)}
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

    report = build_report(agent_recorder().snapshot(), run_info())
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
