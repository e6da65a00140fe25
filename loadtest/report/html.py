"""``report.html``: a whole run on one page that opens anywhere: inline CSS and SVG, no network.

Every piece of text from the report is escaped: scenario names, URLs and server error messages
are not ours.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from html import escape

from loadtest.core.figures import ALIASES
from loadtest.report import fmt
from loadtest.report.headline import (
    headline,
    label,
    observed,
    passed,
    verdict,
)
from loadtest.report.html_plots import memory_plot, plots, timeline
from loadtest.report.model import Report, Summary
from loadtest.report.style import CSS

STATS = ("count", "min", "mean", "p50", "p90", "p95", "p99", "p999", "max")
HEADINGS = ("count", "min", "mean", "p50", "p90", "p95", "p99", "p99.9", "max")


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


def _figure(title: str, note: str, svg: str) -> str:
    return f"<figure><figcaption>{_e(title)}<span>{_e(note)}</span></figcaption>{svg}</figure>"


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
    parts.append(timeline(report))
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
        memory = memory_plot(report)
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
            plots(report),
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
