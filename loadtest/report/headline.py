"""What every writer leads with: the verdict and the headline figures."""

from __future__ import annotations

import re

from loadtest.core.figures import ALIASES
from loadtest.core.slo import SloCheck
from loadtest.report import fmt
from loadtest.report.model import Report

PERCENTILES = ("p50", "p95", "p99")
TURNS = ("turns_started", "turns_completed", "turns_failed", "turns_unfinished")
RATES = (
    ("error rate", "error_rate"),
    ("retry rate", "retry_rate"),
    ("goodput", "goodput_per_s"),
    ("turn throughput", "turns_per_s"),
    ("event throughput", "events_per_s"),
    ("frame throughput", "frames_per_s"),
)
LATENCIES = ("time_to_first_output", "time_to_terminal_status")

Rows = list[tuple[str, str]]
_FIGURE = re.compile(r"\s*([a-z0-9_.]+)")


def passed(report: Report) -> bool:
    """The exit code's verdict: every SLO held or, with none set, no turn failed."""
    return report.slo.passed if report.slo.checks else report.counts.turns_failed == 0


def verdict(report: Report) -> str:
    return "PASS" if passed(report) else "FAIL"


def observed(check: SloCheck) -> str:
    """What an SLO check saw, in its figure's unit (the figure leads its expression)."""
    match = _FIGURE.match(check.expr)
    return fmt.figure(match[1] if match else "", check.observed)


def label(name: str) -> str:
    alias = ALIASES.get(name)
    return f"{name} ({alias})" if alias else name


def headline(report: Report) -> list[tuple[str, Rows]]:
    """The headline figures in groups: (group title, [(label, formatted value), ...])."""
    counts = report.counts.model_dump()
    turns = [(name.replace("_", " "), fmt.number(counts[name])) for name in TURNS]
    rates = [(text, fmt.figure(path, report.figure(path))) for text, path in RATES]
    latency = [
        (f"{ALIASES[name]} {p}", fmt.ms(report.figure(f"{name}.{p}")))
        for name in LATENCIES
        for p in PERCENTILES
    ]
    integrity = [
        (name.replace("_", " "), fmt.number(value))
        for name, value in report.integrity.model_dump().items()
    ]
    return [("Turns", turns), ("Rates", rates), ("Latency", latency), ("Integrity", integrity)]
