"""What a person watching a run sees: a progress line every few seconds, a summary at the end."""

from __future__ import annotations

import sys
from pathlib import Path

from loadtest.metrics.recorder import Snapshot
from loadtest.metrics.report import Report

INTERVAL_S = 2.0


class Progress:
    """Prints rates since the last line, from cumulative snapshots."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._last_t = 0.0
        self._last: dict[str, int] = {}

    def maybe_print(self, elapsed: float, snap: Snapshot) -> None:
        if not self.enabled or elapsed - self._last_t < INTERVAL_S:
            return
        span = elapsed - self._last_t
        now = {k: snap.count(k) for k in ("events", "frames", "turns_completed", "turns_failed")}
        rate = {k: (v - self._last.get(k, 0)) / span for k, v in now.items()}
        ttft = snap.histogram("time_to_first_output")
        series = snap.series
        streams = series[max(series, key=int)][0][7] if series else 0
        errors = now["turns_failed"] + snap.count("decode_errors")
        print(
            f"[{elapsed:6.1f}s] streams {streams:>5} | turns/s {rate['turns_completed']:7.2f} | "
            f"events/s {rate['events']:9.0f} | TTFT p50 {ttft.value_at_percentile(50) / 1000:7.1f} ms"
            f" p95 {ttft.value_at_percentile(95) / 1000:7.1f} ms | errors {errors}",
            file=sys.stderr,
            flush=True,
        )
        self._last_t, self._last = elapsed, now


def print_summary(report: Report, files: list[Path]) -> None:
    """The end-of-run table: headline figures, SLOs, where the files are."""
    c, r, lat = report.counts, report.rates, report.latency_ms
    out = sys.stdout

    def latency_row(name: str, label: str) -> str:
        s = lat.get(name)
        if s is None or not s.count:
            return f"  {label:<28} {'n/a':>10}"
        return f"  {label:<28} {s.p50:>10.1f} {s.p95:>10.1f} {s.p99:>10.1f} {s.max:>10.1f}"

    status = (
        "complete"
        if report.run.complete
        else "INCOMPLETE: " + "; ".join(report.run.incomplete_reasons)
    )
    print(
        f"\nchatload: {report.run.scenario} against {report.run.target.url} "
        f"(era {report.run.target.era}), {report.run.duration_s:.1f} s, {status}",
        file=out,
    )
    print(
        f"  turns: {c.turns_started} started, {c.turns_completed} completed, {c.turns_failed} "
        f"failed, {c.turns_unfinished} unfinished; error rate {r.error_rate:.2%}, retry rate "
        f"{r.retry_rate:.2%}",
        file=out,
    )
    print(
        f"  stream: {c.frames} frames, {c.events} events, {c.bytes} bytes; "
        f"{r.events_per_s:.0f} events/s; {c.retry_events} retries, {c.error_events} errors",
        file=out,
    )
    print(f"  {'latency (ms)':<28} {'p50':>10} {'p95':>10} {'p99':>10} {'max':>10}", file=out)
    for name, label in (
        ("chat_create_latency", "create chat"),
        ("chat_message_latency", "post message"),
        ("stream_connect_latency", "stream connect"),
        ("time_to_running", "time to running"),
        ("time_to_first_output", "time to first output"),
        ("time_to_terminal_status", "time to terminal status"),
        ("time_per_output_token", "time per output token"),
    ):
        print(latency_row(name, label), file=out)
    for check in report.slo.checks:
        mark = "PASS" if check.passed else "FAIL"
        print(f"  SLO {mark}: {check.expr} (observed {check.observed})", file=out)
    for warning in report.generator.warnings:
        print(f"  warning: {warning}", file=out)
    if files:
        print(f"  report: {files[0].parent}/", file=out)
