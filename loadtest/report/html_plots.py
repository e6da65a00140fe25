"""report.html's plots: the time series, distributions, errors and a typical agent turn,
as inline SVG (``svg.py`` draws them)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from html import escape

from loadtest.report import fmt
from loadtest.report.headline import PERCENTILES
from loadtest.report.model import Report, SeriesPoint
from loadtest.report.svg import Bar, Series, Span, bar_chart, hbar_chart, line_chart, timeline_chart

#: A typical turn's bars: (legend entry, what the bar spans).
SEGMENT_GROUPS = {
    "wait": ("waiting for the step's first output", "start or last commit -> first part"),
    "stream": ("the LLM streaming", "first part -> the step's commit"),
    "tool": ("a tool running", "tool-call part -> tool-result part"),
}


def figure(title: str, note: str, svg: str) -> str:
    """A plot with its caption and a note under it."""
    return (
        f"<figure><figcaption>{escape(title)}<span>{escape(note)}</span></figcaption>{svg}</figure>"
    )


def _series(points: Sequence[SeriesPoint], fields: Sequence[tuple[str, str]]) -> list[Series]:
    return [
        Series(
            name=title,
            points=[(p.t, getattr(p, field)) for p in points],
            dashed=field.endswith("_p95"),
        )
        for title, field in fields
    ]


def _distribution(report: Report, name: str, unit: str) -> list[Bar]:
    return [
        Bar(label=fmt.short(bound), value=count, tip=f"≤ {fmt.number(bound)} {unit}: {count:g}")
        for bound, count in report.histograms.get(name, [])
    ]


def _markers(report: Report, name: str) -> list[tuple[str, int]]:
    """Which bar holds each headline percentile: the first whose upper bound reaches it."""
    rows = report.histograms.get(name, [])
    summary = report.latency_ms.get(name)
    if not rows or summary is None:
        return []
    bounds = [bound for bound, _ in rows]
    return [
        (p, next((i for i, b in enumerate(bounds) if b >= value), len(bounds) - 1))
        for p in PERCENTILES
        for value in [getattr(summary, p)]
    ]


def _error_bars(report: Report) -> list[Bar]:
    by_kind: Counter[str] = Counter()
    for row in report.errors:
        by_kind[f"{row.stage} / {row.kind}" if row.kind else row.stage] += row.count
    bars = [Bar(label=k, value=n, group="errors") for k, n in by_kind.most_common()]
    counts = report.counts
    retries = (
        ("retry events", counts.retry_events),
        ("turns retried", counts.turns_retried),
        ("retried, then recovered", counts.retry_recovered),
        ("retried, then failed", counts.retry_exhausted),
    )
    return bars + [Bar(label=k, value=n, group="retries") for k, n in retries if n]


def plots(report: Report) -> str:
    points = report.timeseries
    elapsed = "seconds since start"
    ttft, e2e = "time_to_first_output", "time_to_terminal_status"
    figures = [
        figure(
            "TTFT over time",
            "time to first output of the turns that ended in each second",
            line_chart(
                "ttft_over_time",
                "TTFT over time",
                _series(points, (("p50", f"{ttft}_p50"), ("p95", f"{ttft}_p95"))),
                elapsed,
                "ms",
            ),
        ),
        figure(
            "E2E over time",
            "time to terminal status of the turns that ended in each second",
            line_chart(
                "e2e_over_time",
                "E2E over time",
                _series(points, (("p50", f"{e2e}_p50"), ("p95", f"{e2e}_p95"))),
                elapsed,
                "ms",
            ),
        ),
        figure(
            "Stream throughput",
            "received by all clients, per second",
            line_chart(
                "throughput",
                "Stream throughput",
                _series(points, (("events/s", "events_per_s"), ("frames/s", "frames_per_s"))),
                elapsed,
                "per second",
            ),
        ),
        figure(
            "Turns",
            "turns started and completed, errors and retries, per second",
            line_chart(
                "turns",
                "Turns",
                _series(
                    points,
                    (
                        ("completed", "turns_completed"),
                        ("started", "turns_started"),
                        ("errors", "errors"),
                        ("retries", "retries"),
                    ),
                ),
                elapsed,
                "per second",
            ),
        ),
        figure(
            "TTFT distribution",
            "turns per latency bucket, with the headline percentiles",
            bar_chart(
                "ttft_distribution",
                "TTFT distribution",
                _distribution(report, ttft, "ms"),
                "TTFT, ms (bucket upper bound)",
                "turns",
                _markers(report, ttft),
            ),
        ),
        figure(
            "E2E distribution",
            "turns per latency bucket, with the headline percentiles",
            bar_chart(
                "e2e_distribution",
                "E2E distribution",
                _distribution(report, e2e, "ms"),
                "E2E, ms (bucket upper bound)",
                "turns",
                _markers(report, e2e),
            ),
        ),
        figure(
            "Errors and retries",
            "errors by stage / kind; retries by outcome",
            hbar_chart("errors", "Errors and retries", _error_bars(report), "count"),
        ),
        figure(
            "Events per frame",
            "how many events the server batched into one websocket frame",
            bar_chart(
                "events_per_frame",
                "Events per frame",
                _distribution(report, "events_per_frame", "events"),
                "events in a frame (bucket upper bound)",
                "frames",
            ),
        ),
    ]
    return f'<section><h2>Plots</h2><div class="plots">{"".join(figures)}</div></section>'


def timeline(report: Report) -> str:
    turn = report.typical_turn
    if turn is None:
        return ""
    spans = []
    #: Per tool name, where each of its rows is free from: a call shares a row with an
    #: earlier call of its tool that ended before it began, else it gets a row of its own.
    free: dict[str, list[float]] = {}
    for segment in turn.segments:
        group, what = SEGMENT_GROUPS[segment.kind]
        row = segment.label
        if segment.kind == "tool":
            rows = free.setdefault(row, [])
            index = next((i for i, end in enumerate(rows) if end <= segment.start_ms), len(rows))
            if index == len(rows):
                rows.append(segment.end_ms)
            rows[index] = segment.end_ms
            row = f"tool: {row}" + (f" #{index + 1}" if index else "")
        spans.append(
            Span(
                row=row,
                start=segment.start_ms,
                end=segment.end_ms,
                group=group,
                tip=f"{row}, {what}: {fmt.number(segment.start_ms)} to "
                f"{fmt.number(segment.end_ms)} ms ({fmt.number(segment.end_ms - segment.start_ms)} ms)",
            )
        )
    return figure(
        "A typical turn",
        f"the completed turn nearest the median E2E: {fmt.number(turn.duration_ms)} ms, "
        f"{turn.steps} step{'' if turn.steps == 1 else 's'}; each step waits for its first "
        "output, then streams until its commit; tools run between steps",
        timeline_chart("typical_turn", "A typical turn", spans, "ms since the turn's start"),
    )


def memory_plot(report: Report) -> str:
    """The load processes' resident memory together, per second."""
    return figure(
        "Generator memory",
        "the load processes' resident memory together: a soak's should level off",
        line_chart(
            "generator_memory",
            "Generator memory",
            _series(report.timeseries, (("memory", "generator_memory_mb"),)),
            "seconds since start",
            "MB",
        ),
    )
