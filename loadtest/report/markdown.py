"""``summary.md``: the run in a few tables, for a CI job summary (GitHub-flavoured markdown)."""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from html import escape

from loadtest.report import fmt
from loadtest.report.headline import headline, observed, verdict
from loadtest.report.model import Report

TOP_ERRORS = 5
MESSAGE_CHARS = 120


def _cell(value: object) -> str:
    """Text made inert in a table cell: no HTML, no column break, one line."""
    text = " ".join(str(value).split())
    return escape(text, quote=False).replace("|", "\\|")


def _table(
    head: Sequence[str], rows: Iterable[Sequence[object]], numeric: Container[int]
) -> list[str]:
    align = ["---:" if i in numeric else "---" for i in range(len(head))]
    return [
        "| " + " | ".join(head) + " |",
        "| " + " | ".join(align) + " |",
        *("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows),
        "",
    ]


def render_markdown(report: Report) -> str:
    """The report's verdict, SLOs, headline figures, top errors and warnings."""
    run = report.run
    mark = ":white_check_mark:" if verdict(report) == "PASS" else ":x:"
    lines = [f"## {mark} chatload: {_cell(run.scenario)}: {verdict(report)}", ""]
    if not run.complete:
        reasons = "; ".join(run.incomplete_reasons) or "no reason was recorded"
        lines += [f"> [!WARNING]\n> **INCOMPLETE run**: {_cell(reasons)}", ""]
    load = (
        f"{fmt.number(run.load.users or 0)} users (closed loop)"
        if run.load.mode == "closed"
        else f"{fmt.number(run.load.arrival_rate or 0)} turns/s (open loop)"
    )
    lines += [
        f"Target `{_cell(run.target.url)}` (era {run.target.era}, server "
        f"{_cell(run.target.server_version or 'unknown')}), {load}, "
        f"{fmt.seconds(run.duration_s)} from {fmt.when(run.started_at)}.",
        "",
        "### SLOs",
        "",
    ]
    if report.slo.checks:
        rows = [(c.expr, observed(c), "PASS" if c.passed else "FAIL") for c in report.slo.checks]
        lines += _table(("check", "observed", "result"), rows, numeric=(1,))
    else:
        lines += ["No SLOs were set: the verdict is whether any turn failed.", ""]
    lines += ["### Headline", ""]
    lines += _table(
        ("figure", "value"), [row for _, rows in headline(report) for row in rows], numeric=(1,)
    )
    lines += _phases(report)
    if report.errors:
        lines += [f"### Top errors ({len(report.errors)} kinds)", ""]
        errors = [
            (e.stage, e.kind or "", e.status_code or "", e.count, e.message[:MESSAGE_CHARS])
            for e in report.errors[:TOP_ERRORS]
        ]
        lines += _table(("stage", "kind", "status", "count", "message"), errors, numeric=(3,))
    if report.agent_run:
        lines += ["### Agents: tools", ""]
        tools = [
            (
                name,
                report.tool_calls_by_name.get(name, 0),
                fmt.ms(timed.p50 if timed and timed.count else None),
                fmt.ms(timed.p95 if timed and timed.count else None),
            )
            for name in sorted(set(report.tool_calls_by_name) | set(report.tool_time_by_name))
            for timed in [report.tool_time_by_name.get(name)]
        ]
        lines += _table(("tool", "calls", "tool time p50", "p95"), tools, numeric=(1, 2, 3))
    if report.server_metrics is not None:
        compare = report.server_metrics.client_vs_server_ttft
        lines += ["### Time to first token: client and server", ""]
        ttft = [
            (
                stat,
                fmt.ms(getattr(compare, f"client_{stat}_ms")),
                fmt.ms(getattr(compare, f"server_{stat}_ms")),
                fmt.ms(getattr(compare, f"difference_{stat}_ms")),
            )
            for stat in ("mean", "p50", "p95")
        ]
        lines += _table(("", "client", "server", "difference"), ttft, numeric=(1, 2, 3))
        if report.server_metrics.error:
            lines += [f"> [!WARNING]\n> server metrics: {_cell(report.server_metrics.error)}", ""]
    if report.generator.warnings:
        lines += ["### Generator warnings", ""]
        lines += [f"- :warning: {_cell(w)}" for w in report.generator.warnings] + [""]
    return "\n".join(lines)


def _phases(report: Report) -> list[str]:
    """First turns beside follow-ups (Coder's scaletest phases), p50 / p95 in ms; a storm's
    release spreads."""
    initial, follow_up = report.phases.initial, report.phases.follow_up
    if not any(s.count for s in [*initial.values(), *follow_up.values()]):
        return []
    rows = []
    for name, text in (
        ("message_latency", "message sent (create / post)"),
        ("time_to_running", "time to running"),
        ("time_to_first_output", "time to first output"),
        ("time_to_terminal_status", "time to terminal status"),
    ):
        cells = [
            f"{fmt.ms(s.p50)} / {fmt.ms(s.p95)}" if s is not None and s.count else "—"
            for s in (initial.get(name), follow_up.get(name))
        ]
        rows.append((text, *cells))
    lines = ["### By phase (p50 / p95)", ""]
    lines += _table(("figure", "initial", "follow-up"), rows, numeric=(1, 2))
    storm = report.storm
    if storm is not None:
        spreads = [("first turns", storm.release_spread_ms)]
        if storm.follow_up_release_spread_ms is not None:
            spreads.append(("follow-ups", storm.follow_up_release_spread_ms))
        started = "; ".join(
            f"{what} {fmt.ms(s.p50)} (p50), {fmt.ms(s.max)} (max)" for what, s in spreads
        )
        lines += [f"Storm of {storm.chats} chats: started after their release: {started}.", ""]
    return lines
