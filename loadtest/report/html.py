"""``report.html``: a whole run on one page that opens anywhere: inline CSS and SVG, no network.

Every piece of text from the report is escaped: scenario names, URLs and server error messages
are not ours.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Iterable, Sequence
from html import escape

from loadtest.core.figures import ALIASES
from loadtest.report import fmt
from loadtest.report.headline import (
    PERCENTILES,
    headline,
    label,
    observed,
    passed,
    verdict,
)
from loadtest.report.model import Report, SeriesPoint, Summary
from loadtest.report.svg import Bar, Series, Span, bar_chart, hbar_chart, line_chart, timeline_chart

STATS = ("count", "min", "mean", "p50", "p90", "p95", "p99", "p999", "max")
HEADINGS = ("count", "min", "mean", "p50", "p90", "p95", "p99", "p99.9", "max")

CSS = """
:root { --fg: #1d232b; --muted: #5d6773; --line: #d9dee4; --bg: #f5f7f9; --pass: #177245;
  --fail: #b42318; --warn: #9a5b00; --warn-bg: #fff4e0; --fail-bg: #fdecea; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 1360px; margin: 0 auto; padding: 24px 28px 40px; }
h1 { font-size: 24px; margin: 0 0 12px; display: flex; gap: 12px; align-items: center;
  flex-wrap: wrap; }
h2 { font-size: 17px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
section, header { background: #fff; border: 1px solid var(--line); border-radius: 8px;
  padding: 4px 20px 18px; margin-top: 18px; }
header { padding-top: 18px; }
.badge { font-size: 13px; font-weight: 700; letter-spacing: .04em; padding: 3px 10px;
  border-radius: 4px; color: #fff; }
.badge.pass { background: var(--pass); } .badge.fail { background: var(--fail); }
.badge.incomplete { background: var(--warn); }
.meta { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 8px 24px; margin: 0; }
.meta div { min-width: 0; } .meta dt { color: var(--muted); font-size: 12px; }
.meta dd { margin: 0; overflow-wrap: anywhere; font-weight: 500; }
.verdict { margin: 12px 0 0; color: var(--muted); }
.alert { margin-top: 14px; padding: 10px 14px; border-radius: 6px; border-left: 5px solid; }
.alert.incomplete { background: var(--fail-bg); border-color: var(--fail); }
.alert.warning { background: var(--warn-bg); border-color: var(--warn); }
.alert ul { margin: 4px 0 0; padding-left: 20px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
table.narrow { width: auto; min-width: 560px; }
th, td { padding: 5px 10px; line-height: 20px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; background: #fafbfc; }
td.num, th.num { text-align: right; white-space: nowrap; }
tr.none td { color: #a3abb5; }
td.pass { color: var(--pass); font-weight: 700; } td.fail { color: var(--fail); font-weight: 700; }
td.formula { color: var(--muted); font-size: 12px; }
td.message { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px;
  overflow-wrap: anywhere; }
.headline { display: grid; align-items: start; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 24px; }
.headline h3 { font-size: 13px; margin: 0 0 4px; color: var(--muted); }
.headline td.num { font-size: 16px; font-weight: 600; }
.plots { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 20px 28px; }
figure { margin: 0; min-width: 0; }
figcaption { font-weight: 600; margin-bottom: 2px; }
figcaption span { display: block; font-weight: 400; color: var(--muted); font-size: 12px; }
svg.plot { width: 100%; height: auto; display: block; overflow: visible; }
.plot text { font-size: 11px; fill: #3d4650; }
.plot text.label { font-size: 12px; fill: var(--muted); }
.plot text.empty { font-size: 14px; fill: #a3abb5; }
.plot .legend text { font-size: 12px; }
.plot .axis { stroke: #8a949e; stroke-width: 1; }
.plot .grid { stroke: #e8ebef; stroke-width: 1; }
.plot .line { fill: none; stroke-width: 2; stroke-linejoin: round; stroke-linecap: round; }
.plot line.marker { stroke: #d55e00; stroke-width: 1.5; stroke-dasharray: 4 3; }
.plot text.marker { font-weight: 600; fill: #d55e00; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
.plot text.value.inside { fill: #fff; }
.plot rect.bar:hover { opacity: .75; }
.counts { display: grid; align-items: start; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 0 24px; }
footer { color: var(--muted); font-size: 12px; margin-top: 18px; }
@media (max-width: 900px) { .plots, .headline, .meta, .counts { grid-template-columns: 1fr; } }
"""


def _e(value: object) -> str:
    return escape(str(value))


def _table(
    head: Sequence[str], rows: Iterable[str], numeric: Container[int] = (), css: str = ""
) -> str:
    """A table; the ``numeric`` columns' headings align right, over their numbers."""
    cells = "".join(
        f'<th class="num">{_e(h)}</th>' if i in numeric else f"<th>{_e(h)}</th>"
        for i, h in enumerate(head)
    )
    attr = f' class="{css}"' if css else ""
    return f"<table{attr}><thead><tr>{cells}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _pairs(rows: Iterable[tuple[str, str]], css: str = "") -> str:
    """A two-column table: a name, and its value aligned right."""
    body = "".join(f"<tr><td>{_e(k)}</td><td class='num'>{_e(v)}</td></tr>" for k, v in rows)
    attr = f' class="{css}"' if css else ""
    return f"<table{attr}><tbody>{body}</tbody></table>"


def _load(report: Report) -> str:
    load = report.run.load
    if load.mode == "open":
        rate = "?" if load.arrival_rate is None else fmt.number(load.arrival_rate)
        return f"open loop, {rate} turns/s arriving"
    users = "?" if load.users is None else fmt.number(load.users)
    return f"closed loop, {users} user{'' if load.users == 1 else 's'}"


def _header(report: Report) -> str:
    run = report.run
    ok = passed(report)
    badges = f'<span class="badge {"pass" if ok else "fail"}">{verdict(report)}</span>'
    if not run.complete:
        badges += '<span class="badge incomplete">INCOMPLETE</span>'
    meta = {
        "target": run.target.url,
        "era": run.target.era,
        "server version": run.target.server_version or "unknown",
        "load": _load(report),
        "started": fmt.when(run.started_at),
        "ended": fmt.when(run.ended_at),
        "duration": fmt.seconds(run.duration_s),
        "workers": f"{run.workers}" if run.workers else "0 (one local process)",
    }
    items = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in meta.items())
    if report.slo.checks:
        held = sum(c.passed for c in report.slo.checks)
        why = f"{held} of {len(report.slo.checks)} SLOs held."
    else:
        failed = report.counts.turns_failed
        did = fmt.number(failed) if failed else "none"
        why = f"No SLOs set, so the verdict is whether any turn failed: {did} did."
    out = [
        f"<header><h1>chatload: {_e(run.scenario)} {badges}</h1>",
        f'<dl class="meta">{items}</dl><p class="verdict">{_e(why)} '
        f"chatload {_e(report.tool.version)}, report schema {report.schema_version}.</p>",
    ]
    if not run.complete:
        reasons = run.incomplete_reasons or ["no reason was recorded"]
        out.append(
            '<div class="alert incomplete"><strong>INCOMPLETE run</strong>: its figures cover '
            f"only part of it.<ul>{''.join(f'<li>{_e(r)}</li>' for r in reasons)}</ul></div>"
        )
    out.append(_warnings(report))
    out.append("</header>")
    return "".join(out)


def _warnings(report: Report) -> str:
    if not report.generator.warnings:
        return ""
    items = "".join(f"<li>{_e(w)}</li>" for w in report.generator.warnings)
    return (
        '<div class="alert warning"><strong>The load generator may have limited this run, '
        f"or not kept up for long</strong><ul>{items}</ul></div>"
    )


def _slo(report: Report) -> str:
    if not report.slo.checks:
        return "<section><h2>SLOs</h2><p>No SLOs were set for this run.</p></section>"
    rows = []
    for check in report.slo.checks:
        result = "pass" if check.passed else "fail"
        rows.append(
            f"<tr><td>{_e(check.expr)}</td><td class='num'>{_e(observed(check))}</td>"
            f"<td class='num {result}'>{result.upper()}</td></tr>"
        )
    table = _table(("check", "observed", "result"), rows, numeric=(1, 2), css="narrow")
    return f"<section><h2>SLOs</h2>{table}</section>"


def _headline(report: Report) -> str:
    groups = [f"<div><h3>{_e(title)}</h3>{_pairs(rows)}</div>" for title, rows in headline(report)]
    return f'<section><h2>Headline</h2><div class="headline">{"".join(groups)}</div></section>'


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


def _figure(title: str, note: str, svg: str) -> str:
    return f"<figure><figcaption>{_e(title)}<span>{_e(note)}</span></figcaption>{svg}</figure>"


def _plots(report: Report) -> str:
    points = report.timeseries
    elapsed = "seconds since start"
    ttft, e2e = "time_to_first_output", "time_to_terminal_status"
    figures = [
        _figure(
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
        _figure(
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
        _figure(
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
        _figure(
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
        _figure(
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
        _figure(
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
        _figure(
            "Errors and retries",
            "errors by stage / kind; retries by outcome",
            hbar_chart("errors", "Errors and retries", _error_bars(report), "count"),
        ),
        _figure(
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


def _summaries(
    title: str, summaries: dict[str, Summary], formulas: dict[str, str], whole: bool = False
) -> str:
    """Every summary in a row; the formula column only where the report defines some.

    ``whole``: values are counts (events in a frame), so 2.0 reads as 2.
    """
    defined = any(name in formulas for name in summaries)
    rows = []
    for name, summary in summaries.items():
        data = summary.model_dump()
        if summary.count:
            values = [data[s] for s in STATS]
            if whole:
                values = [int(v) if float(v).is_integer() else v for v in values]
            cells = "".join(f"<td class='num'>{fmt.number(v)}</td>" for v in values)
        else:
            cells = "<td class='num'>0</td>" + "<td class='num'>—</td>" * (len(STATS) - 1)
        formula = f"<td class='formula'>{_e(formulas.get(name, ''))}</td>" if defined else ""
        row_class = "" if summary.count else " class='none'"
        rows.append(f"<tr{row_class}><td>{_e(label(name))}</td>{cells}{formula}</tr>")
    head = ("name", *HEADINGS, *(("how it is measured",) if defined else ()))
    table = _table(head, rows, numeric=range(1, len(STATS) + 1))
    return f"<section><h2>{_e(title)}</h2>{table}</section>"


#: The figures of ``report.phases``, in the order shown, with their labels.
PHASE_ROWS = (
    ("message_latency", "message sent (create / post)"),
    ("time_to_running", "time to running"),
    ("time_to_first_output", "time to first output"),
    ("time_to_terminal_status", "time to terminal status"),
)


def _phase_cells(summary: Summary | None) -> str:
    if summary is None or not summary.count:
        return "<td class='num'>0</td>" + "<td class='num'>—</td>" * 3
    values = (summary.count, summary.p50, summary.p95, summary.max)
    return "".join(f"<td class='num'>{fmt.number(v)}</td>" for v in values)


def _phases(report: Report) -> str:
    """First turns beside follow-ups (Coder's scaletest phases); a storm's release spreads."""
    phases, storm = report.phases, report.storm
    if not phases.initial and storm is None:
        return ""
    rows = [
        f"<tr><td>{_e(text)}</td>{_phase_cells(phases.initial.get(name))}"
        f"{_phase_cells(phases.follow_up.get(name))}</tr>"
        for name, text in PHASE_ROWS
    ]
    head = ("", "initial: turns", "p50", "p95", "max", "follow-up: turns", "p50", "p95", "max")
    parts = [
        "<p>Each chat's first turn (the one its create carried: Coder's scaletest phase "
        "<code>initial</code>) apart from its later turns (<code>follow_up</code>).</p>",
        _table(head, rows, numeric=range(1, 9)),
    ]
    if storm is not None:
        delay = ""
        if storm.follow_up_release_spread_ms is not None:
            delay = f", follow-ups held {fmt.seconds(storm.turn_start_delay_s)} after every first"
        parts.append(
            f"<h3>Storm</h3><p>{fmt.number(storm.chats)} chats of {fmt.number(storm.turns)} "
            f"turns, created at once behind a barrier{_e(delay)}. How long after each release "
            "each chat's turn started:</p>"
        )
        spreads = [("first turns", storm.release_spread_ms)]
        if storm.follow_up_release_spread_ms is not None:
            spreads.append(("follow-ups", storm.follow_up_release_spread_ms))
        rows = [f"<tr><td>{_e(what)}</td>{_phase_cells(s)}</tr>" for what, s in spreads]
        spread_head = ("released", "turns", "p50 (ms)", "p95 (ms)", "max (ms)")
        parts.append(_table(spread_head, rows, numeric=range(1, 5), css="narrow"))
    return f"<section><h2>By phase</h2>{''.join(parts)}</section>"


def _errors(report: Report) -> str:
    if not report.errors:
        return "<section><h2>Errors</h2><p>No errors.</p></section>"
    rows = []
    for row in report.errors:
        retryable = None if row.retryable is None else ("yes" if row.retryable else "no")
        optional = (row.kind, row.provider, row.status_code, retryable)
        cells = "".join(f"<td>{'—' if v is None else _e(v)}</td>" for v in optional)
        rows.append(
            f"<tr><td>{_e(row.stage)}</td>{cells}<td class='num'>{fmt.number(row.count)}</td>"
            f"<td class='message'>{_e(row.message)}</td></tr>"
        )
    head = ("stage", "kind", "provider", "status", "retryable", "count", "message")
    table = _table(head, rows, numeric=(5,))
    return f"<section><h2>Errors</h2>{table}</section>"


def _counts(report: Report) -> str:
    counts = [(k, fmt.number(v)) for k, v in report.counts.model_dump().items()]
    rates = [(k, fmt.figure(k, v)) for k, v in report.rates.model_dump().items()]
    per_column = -(-len(counts) // 3)
    columns = [counts[i : i + per_column] for i in range(0, len(counts), per_column)]
    tables = "".join(_pairs(column) for column in [*columns, rates])
    return f'<section><h2>All counts and rates</h2><div class="counts">{tables}</div></section>'


def _server(report: Report) -> str:
    """``server_metrics``, briefly: the client's TTFT beside the server's, then the stages."""
    section = report.server_metrics
    if section is None:
        return ""
    parts = [f"<p>Scraped from {_e(section.scraped_from or '—')}.</p>"]
    if section.error:
        parts.append(f'<div class="alert warning">{_e(section.error)}</div>')
    compare = section.client_vs_server_ttft
    rows = [
        (
            f"<tr><td>{stat}</td><td class='num'>{fmt.ms(getattr(compare, f'client_{stat}_ms'))}"
            f"</td><td class='num'>{fmt.ms(getattr(compare, f'server_{stat}_ms'))}</td>"
            f"<td class='num'>{fmt.ms(getattr(compare, f'difference_{stat}_ms'))}</td></tr>"
        )
        for stat in ("mean", "p50", "p95")
    ]
    head = ("time to first token", "client", "server", "network, API, queue")
    parts.append(_table(head, rows, numeric=(1, 2, 3), css="narrow"))
    tools = section.client_vs_server_tool_time
    if tools.client_mean_ms is not None or tools.server_mean_ms is not None:
        rows = [
            (
                f"<tr><td>{stat}</td><td class='num'>{fmt.ms(getattr(tools, f'client_{stat}_ms'))}"
                f"</td><td class='num'>{fmt.ms(getattr(tools, f'server_{stat}_ms'))}</td>"
                f"<td class='num'>{fmt.ms(getattr(tools, f'difference_{stat}_ms'))}</td></tr>"
            )
            for stat in ("mean", "p50", "p95")
        ]
        head = (
            "tool time",
            "client tool_time",
            "server tool_call stage",
            "commit, publish, deliver",
        )
        parts.append(_table(head, rows, numeric=(1, 2, 3), css="narrow"))
    stages = [
        f"<tr><td>{_e(name)}</td><td class='num'>{fmt.number(f.count)}</td>"
        f"<td class='num'>{fmt.ms(f.mean_ms)}</td><td class='num'>{fmt.ms(f.p50_ms)}</td>"
        f"<td class='num'>{fmt.ms(f.p95_ms)}</td></tr>"
        for name, f in section.stages.items()
    ]
    if stages:
        table = _table(("stage", "count", "mean", "p50", "p95"), stages, numeric=(1, 2, 3, 4))
        parts.append(table)
    parts.append(
        "<p>Server quantiles are estimated from Coder's histogram buckets; the means are exact.</p>"
    )
    return f"<section><h2>What the server saw</h2>{''.join(parts)}</section>"


#: A typical turn's bars: (legend entry, what the bar spans).
SEGMENT_GROUPS = {
    "wait": ("waiting for the step's first output", "start or last commit -> first part"),
    "stream": ("the LLM streaming", "first part -> the step's commit"),
    "tool": ("a tool running", "tool-call part -> tool-result part"),
}


def _timeline(report: Report) -> str:
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
    return _figure(
        "A typical turn",
        f"the completed turn nearest the median E2E: {fmt.number(turn.duration_ms)} ms, "
        f"{turn.steps} step{'' if turn.steps == 1 else 's'}; each step waits for its first "
        "output, then streams until its commit; tools run between steps",
        timeline_chart("typical_turn", "A typical turn", spans, "ms since the turn's start"),
    )


def _agents(report: Report) -> str:
    """Steps, tools and sub-agents (docs/metrics.md): only for a run of agents' turns."""
    if not report.agent_run:
        return ""
    c, lat, dist = report.counts, report.latency_ms, report.distributions

    def p50_max(summary: Summary | None, unit: str = "") -> str:
        if summary is None or not summary.count:
            return "n/a"
        p50, high = (int(v) if float(v).is_integer() else v for v in (summary.p50, summary.max))
        return f"p50 {fmt.number(p50)}{unit}, max {fmt.number(high)}{unit}"

    rows = [
        ("steps per turn", p50_max(dist.get("steps_per_turn"))),
        ("tool calls per turn", p50_max(dist.get("tool_calls_per_turn"))),
        (
            "step time to first output (steps 2..n)",
            p50_max(lat.get("step_time_to_first_output"), " ms"),
        ),
        ("tool calls / with an error", f"{fmt.number(c.tool_calls)} / {fmt.number(c.tool_errors)}"),
        (
            "sub-agents spawned / failed / followed",
            f"{fmt.number(c.subagents_spawned)} / {fmt.number(c.subagents_failed)} / "
            f"{fmt.number(c.subagents_followed)}",
        ),
        ("sub-agent time to running", p50_max(lat.get("subagent_time_to_running"), " ms")),
    ]
    tools = []
    for name in sorted(set(report.tool_calls_by_name) | set(report.tool_time_by_name)):
        timed = report.tool_time_by_name.get(name)
        cells = "".join(
            f"<td class='num'>{fmt.number(getattr(timed, stat)) if timed and timed.count else '—'}</td>"
            for stat in ("count", "p50", "p95", "p99", "max")
        )
        calls = fmt.number(report.tool_calls_by_name.get(name, 0))
        tools.append(f"<tr><td>{_e(name)}</td><td class='num'>{calls}</td>{cells}</tr>")
    head = ("tool", "calls", "timed", "p50 ms", "p95 ms", "p99 ms", "max ms")
    parts = [_pairs(rows, "narrow")]
    if tools:
        parts.append(_table(head, tools, numeric=range(1, 7), css="narrow"))
    pools = [
        f"<tr><td>{_e(pool)}</td><td class='num'>{fmt.number(s.count)}</td>"
        f"<td class='num'>{fmt.ms(s.p50 if s.count else None)}</td>"
        f"<td class='num'>{fmt.ms(s.p95 if s.count else None)}</td></tr>"
        for pool, s in report.capacity_wait_by_pool.items()
    ]
    if pools:
        parts.append(
            _table(
                ("capacity wait, pool", "waits", "p50", "p95"),
                pools,
                numeric=(1, 2, 3),
                css="narrow",
            )
        )
    parts.append(_timeline(report))
    return f"<section><h2>Agents: steps, tools and sub-agents</h2>{''.join(parts)}</section>"


def _generator(report: Report) -> str:
    gen = report.generator
    rows = [
        ("highest CPU use of a load process", f"{gen.cpu_percent_max:.1f} %"),
        ("greenlet scheduling lag, p99", fmt.ms(gen.loop_lag_ms_p99)),
        ("the generator was the bottleneck", "yes" if gen.bottleneck else "no"),
    ]
    memory = ""
    if gen.memory_mb_peak is not None:
        slope = gen.memory_growth_mb_per_min
        rows += [
            (
                "memory at start / peak / end",
                f"{gen.memory_mb_start:.0f} / {gen.memory_mb_peak:.0f} / {gen.memory_mb_end:.0f} MB",
            ),
            (
                "memory growth over the second half",
                "n/a" if slope is None else f"{slope:+.1f} MB/min",
            ),
        ]
        memory = _figure(
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
    note = _warnings(report) or "<p>No warnings: the generator kept up.</p>"
    return f"<section><h2>Generator health</h2>{_pairs(rows, 'narrow')}{note}{memory}</section>"


def render_html(report: Report) -> str:
    """The report as one HTML page."""
    title = f"chatload: {report.run.scenario} ({verdict(report)})"
    body = "".join(
        [
            _header(report),
            _slo(report),
            _headline(report),
            _plots(report),
            _agents(report),
            _summaries("Latencies (ms)", report.latency_ms, report.formulas),
            _phases(report),
            _server(report),
            _summaries("Distributions", report.distributions, report.formulas, whole=True),
            _errors(report),
            _counts(report),
            _generator(report),
        ]
    )
    aliases = ", ".join(f"{alias} = {name}" for name, alias in ALIASES.items())
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>{body}"
        f"<footer>Latencies in milliseconds, measured from each turn's start (its intended "
        f"start in open-loop runs). {_e(aliases)}.</footer></main></body></html>"
    )
