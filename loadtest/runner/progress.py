"""What a person watching a run sees: a progress line every few seconds, a summary at the end.

Every figure says what it covers: rates are over the last interval, latencies over the
whole run so far, trouble as totals so far. Trouble is never hidden behind a zero: dropped
streams, reconnects, decode errors and failed REST calls each have their own number.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from loadtest.core.measurement import Measurement
from loadtest.report.model import Report, Summary

INTERVAL_S = 2.0
#: The summary's agent latencies, printed only when the run measured them.
AGENT_LATENCIES = frozenset(
    {
        "step_time_to_first_output",
        "tool_time",
        "subagent_time_to_running",
        "subagent_time_to_first_output",
        "subagent_duration",
        "capacity_wait",
        "capacity_wait_subagent",
    }
)


class RunProgress:
    """Prints rates since the last line, from cumulative measurements."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._last_t = 0.0
        self._last: dict[str, int] = {}

    def maybe_print(self, elapsed: float, measurement: Callable[[], Measurement]) -> None:
        """A line when one is due (a measurement is taken only then: it is not free)."""
        if not self.enabled or elapsed - self._last_t < INTERVAL_S:
            return
        print(self.line(elapsed, measurement()), file=sys.stderr, flush=True)

    def line(self, elapsed: float, measured: Measurement) -> str:
        """One progress line; remembers ``measured`` as the start of the next interval."""
        span = max(elapsed - self._last_t, 1e-9)
        now = {k: measured.count(k) for k in ("events", "turns_completed")}
        rate = {k: (v - self._last.get(k, 0)) / span for k, v in now.items()}
        ttft = measured.histogram("time_to_first_output")
        trouble = [
            f"failed turns {measured.count('turns_failed')}",
            f"stream drops {measured.count('streams_closed_abnormally')}",
            f"reconnects {measured.count('stream_reconnects')}",
        ]
        for name, label in (("decode_errors", "decode errors"), ("http_errors", "HTTP errors")):
            if measured.count(name):
                trouble.append(f"{label} {measured.count(name)}")
        self._last_t, self._last = elapsed, now
        return (
            f"[{elapsed:6.1f}s] streams open {measured.level('open_streams'):>5} | "
            f"last {span:.0f}s: turns/s {rate['turns_completed']:6.2f}, "
            f"events/s {rate['events']:8.0f} | "
            f"run so far: TTFT p50 {ttft.value_at_percentile(50) / 1000:6.0f} ms, "
            f"p95 {ttft.value_at_percentile(95) / 1000:6.0f} ms; "
            + ", ".join(trouble)
            + agents_so_far(measured)
        )


def agents_so_far(measured: Measurement) -> str:
    """The live line's agent part, once a turn called a tool or spawned a sub-agent."""
    calls, spawned = measured.count("tool_calls"), measured.count("subagents_spawned")
    if not calls and not spawned:
        return ""
    tool = measured.histogram("tool_time")
    step = measured.histogram("step_time_to_first_output")
    out = f" | tools {calls} ({measured.count('tool_errors')} errors)"
    if tool.count:
        out += f", tool time p50 {tool.value_at_percentile(50) / 1000:.0f} ms"
    if step.count:
        out += f", step TTFT p50 {step.value_at_percentile(50) / 1000:.0f} ms"
    if spawned:
        out += f", sub-agents {spawned} ({measured.count('subagents_failed')} failed)"
    return out


def print_summary(report: Report, files: list[Path]) -> None:
    """The end-of-run table: headline figures, trouble, SLOs, where the files are."""
    c, r, lat = report.counts, report.rates, report.latency_ms
    out = sys.stdout

    def summary_row(s: Summary | None, label: str) -> str:
        if s is None or not s.count:
            return f"  {label:<28} {'n/a':>10}"
        return f"  {label:<28} {s.p50:>10.1f} {s.p95:>10.1f} {s.p99:>10.1f} {s.max:>10.1f}"

    def latency_row(name: str, label: str) -> str:
        return summary_row(lat.get(name), label)

    status = (
        "complete"
        if report.run.complete
        else "INCOMPLETE: " + "; ".join(report.run.incomplete_reasons)
    )
    target = report.run.target
    where = f"{len(target.replicas)} replicas" if target.replicas else target.url
    print(
        f"\nchatload: {report.run.scenario} against {where} "
        f"(era {target.era}), {report.run.duration_s:.1f} s, {status}",
        file=out,
    )
    gen = report.generator
    if gen.bottleneck:
        print(
            "  GENERATOR BOTTLENECK: these figures measure chatload as much as the target.",
            file=out,
        )
    for warning in gen.warnings + report.run.warnings:
        print(f"    {warning}", file=out)
    if gen.memory_mb_peak is not None:
        slope = gen.memory_growth_mb_per_min
        print(
            f"  generator memory: {gen.memory_mb_start:.0f} MB at start, {gen.memory_mb_peak:.0f} "
            f"peak, {gen.memory_mb_end:.0f} at the end"
            + ("" if slope is None else f"; {slope:+.1f} MB/min over the second half"),
            file=out,
        )
    if report.trace is not None:
        tr = report.trace
        err, ratio = tr.start_error_ms, tr.duration_ratio
        print(
            f"  trace {tr.file} at {tr.speedup:g}x: {tr.chats_started}/{tr.chats_planned} chats "
            f"started, {tr.turns_completed}/{tr.turns_planned} turns completed; start error p50 "
            f"{err.p50:.1f} ms, p99 {err.p99:.1f}, max {err.max:.1f}; replayed/recorded turn "
            f"duration p50 {ratio['p50']:.2f}, p95 {ratio['p95']:.2f}"
            + (f"; {tr.arrivals_per_s:.2f} chats/s" if tr.arrivals_per_s else ""),
            file=out,
        )
    spaces = report.run.workspaces
    print(
        f"  workspaces: {spaces} (chats created in them, round robin)"
        if spaces
        else "  workspaces: none: tools will fail: no workspace ([target] workspaces)",
        file=out,
    )
    lost = f", {c.turns_lost} lost with a worker" if c.turns_lost else ""
    print(
        f"  turns: {c.turns_started} started, {c.turns_completed} completed, {c.turns_failed} "
        f"failed, {c.turns_unfinished} unfinished{lost}; error rate {r.error_rate:.2%}, retry "
        f"rate {r.retry_rate:.2%}",
        file=out,
    )
    print(
        f"  stream: {c.frames} frames, {c.events} events, {c.bytes} bytes; "
        f"{r.events_per_s:.0f} events/s; {c.retry_events} retry events, {c.error_events} error "
        "events",
        file=out,
    )
    print(
        f"  connections: {c.streams_opened} streams opened, {c.streams_closed_abnormally} "
        f"dropped, {c.stream_reconnects} reconnects; {c.decode_errors} decode errors; "
        f"{c.http_requests} REST calls, {c.http_errors} failed ({c.http_connection_errors} "
        "without an answer)",
        file=out,
    )
    if report.reconnects_by_cause:
        causes = ", ".join(f"{cause} {n}" for cause, n in report.reconnects_by_cause.items())
        print(f"  reconnected after a drop: {c.reconnects} ({causes})", file=out)
    for replica in report.replicas:
        ttft = replica.time_to_first_output
        print(
            f"  replica {replica.url}: {replica.streams} streams, {replica.frames} frames, "
            f"{replica.events} events, {replica.errors} errors; TTFT p50 "
            + (f"{ttft.p50:.1f} ms" if ttft.count else "n/a"),
            file=out,
        )
    i = report.integrity
    broken = (
        f"{i.seq_gaps} seq gaps, {i.seq_duplicates} duplicates, {i.seq_out_of_order} out of "
        f"order, {i.content_mismatches} text mismatches"
        if i.errors
        else "nothing lost, repeated or reordered"
    )
    print(f"  integrity: {i.turns_checked} turns checked; {broken}", file=out)
    if c.preview_resets or c.turns_requires_action:
        print(
            f"  era D: {c.preview_resets} preview resets threw away {c.parts_discarded} parts; "
            f"{c.turns_requires_action} turns waited for client tools "
            f"({c.tool_results_posted} tool results posted)",
            file=out,
        )
    steps = report.distributions.get("steps_per_turn")
    if report.agent_run:
        by_name = ", ".join(f"{name} {n}" for name, n in report.tool_calls_by_name.items())
        per_turn = f"p50 {steps.p50:g}, max {steps.max:g}" if steps and steps.count else "n/a"
        print(
            f"  agents: steps per turn {per_turn}; {c.tool_calls} tool calls"
            + (f" ({by_name})" if by_name else "")
            + f", {c.tool_errors} with an error; sub-agents {c.subagents_spawned} spawned, "
            f"{c.subagents_failed} failed, {c.subagents_followed} followed",
            file=out,
        )
    if report.watch.sockets_opened:
        kinds = ", ".join(f"{kind} {n}" for kind, n in report.watch.events_by_kind.items())
        print(
            f"  watch: {report.watch.sockets_opened} sockets, {c.watch_events} events"
            + (f" ({kinds})" if kinds else ""),
            file=out,
        )
    by_stage = Counter[str]()
    for row in report.errors:
        by_stage[row.stage] += row.count
    if by_stage:
        stages = ", ".join(f"{stage} {n}" for stage, n in by_stage.most_common())
        print(f"  errors by stage: {stages}", file=out)
    print(f"  {'latency (ms)':<28} {'p50':>10} {'p95':>10} {'p99':>10} {'max':>10}", file=out)
    for name, label in (
        ("chat_create_latency", "create chat"),
        ("chat_message_latency", "post message"),
        ("stream_connect_latency", "stream connect"),
        ("time_to_running", "time to running"),
        ("time_to_first_output", "time to first output"),
        ("time_to_first_kept_output", "time to first kept output"),
        ("time_to_action_required", "time to action required"),
        ("time_to_terminal_status", "time to terminal status"),
        ("time_per_output_token", "time per output token"),
        ("step_time_to_first_output", "step time to first output"),
        ("tool_time", "tool time"),
        *((f"tool_time:{name}", f"  tool time: {name}") for name in report.tool_time_by_name),
        ("subagent_time_to_running", "sub-agent time to running"),
        ("subagent_time_to_first_output", "sub-agent first output"),
        ("subagent_duration", "sub-agent duration"),
        ("capacity_wait", "capacity wait (root pool)"),
        ("capacity_wait_subagent", "capacity wait (sub-agents)"),
        ("watch_lag", "watch lag (watch - stream)"),
        ("cross_replica_lag", "cross-replica lag"),
        ("reconnect_time", "reconnect time"),
    ):
        optional = ("time_to_action_required", "watch_lag", "cross_replica_lag", "reconnect_time")
        if name.startswith("tool_time:"):
            print(summary_row(report.tool_time_by_name[name.partition(":")[2]], label), file=out)
            continue
        if (name in optional or name in AGENT_LATENCIES) and name not in lat:
            continue  # only when the run had them
        print(latency_row(name, label), file=out)
    _phases(report)
    for check in report.slo.checks:
        mark = "PASS" if check.passed else "FAIL"
        print(f"  SLO {mark}: {check.expr} (observed {check.observed})", file=out)
    if files:
        print(f"  report: {files[0].parent}/", file=out)


def _phases(report: Report) -> None:
    """Each chat's first turns beside its follow-ups (Coder's scaletest phases), and how close
    together a storm's barriers started them."""
    out, initial, follow_up = sys.stdout, report.phases.initial, report.phases.follow_up
    if any(s.count for s in initial.values()) and any(s.count for s in follow_up.values()):
        print(f"  {'by phase (ms, p50 / p95)':<28} {'initial':>21} {'follow-up':>21}", file=out)
        for name, label in (
            ("message_latency", "message (create / post)"),
            ("time_to_running", "time to running"),
            ("time_to_first_output", "time to first output"),
            ("time_to_terminal_status", "time to terminal status"),
        ):
            cells = [
                f"{s.p50:.1f} / {s.p95:.1f}" if s is not None and s.count else "n/a"
                for s in (initial.get(name), follow_up.get(name))
            ]
            print(f"  {label:<28} {cells[0]:>21} {cells[1]:>21}", file=out)
    storm = report.storm
    if storm is None:
        return
    spreads = [("first turns", storm.release_spread_ms)]
    if storm.follow_up_release_spread_ms is not None:
        spreads.append(("follow-ups", storm.follow_up_release_spread_ms))
    started = "; ".join(
        f"{what}: {s.count} started {s.p50:.1f} ms (p50), {s.max:.1f} ms (max) after the release"
        if s.count
        else f"{what}: none released"
        for what, s in spreads
    )
    print(f"  storm of {storm.chats} chats: {started}", file=out)
