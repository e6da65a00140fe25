"""``chatload compare BASE_JSON NEW_JSON``: every headline figure's change, exit 1 on regression.

``compare`` is pure (two reports in, rows out); ``main`` reads files and prints.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import orjson

from loadtest.core.figures import ALIASES, COMPARED
from loadtest.report import fmt
from loadtest.report.capacity import load_capacity, verdict_line
from loadtest.report.load import ReportFileError, read_report
from loadtest.report.model import Report

DEFAULT_MAX_REGRESSION = 10.0
Verdict = Literal["n/a", "same", "better", "worse", "REGRESSION"]


@dataclass(frozen=True, slots=True)
class Row:
    figure: str
    base: float | None
    new: float | None
    #: (new - base) / base in %; None when either is missing or base is 0.
    change_pct: float | None
    verdict: Verdict


def _value(report: Report, path: str) -> float | None:
    """A figure, or None when nothing measured it (a latency of no turns, a run of none)."""
    if "." not in path and not report.counts.turns_started:
        return None
    return report.figure(path)


def _verdict(path: str, lower: bool, base: float, new: float, limit: float) -> Verdict:
    worse_by = (new - base) if lower else (base - new)
    if worse_by == 0:
        return "same"
    if worse_by < 0:
        return "better"
    relative = worse_by / abs(base) * 100 if base else math.inf
    # A ratio must also move by more than limit/100 percentage points: 0 % -> 0.01 % is
    # not a regression, and a base of 0 % has no relative change to judge.
    absolute = worse_by * 100 > limit / 100 if path in fmt.RATIOS else True
    return "REGRESSION" if relative > limit and absolute else "worse"


def compare(base: Report, new: Report, max_regression: float) -> list[Row]:
    """Every headline figure of two reports, judged against ``max_regression`` (in %)."""
    rows = []
    for path, lower in COMPARED:
        a, b = _value(base, path), _value(new, path)
        if a is None or b is None:
            rows.append(Row(path, a, b, None, "n/a"))
            continue
        change = (b - a) / abs(a) * 100 if a else None
        rows.append(Row(path, a, b, change, _verdict(path, lower, a, b, max_regression)))
    return rows


def _percent(text: str) -> float:
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage") from None
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Figures: TTFT, E2E, time_to_running, TPOT, chat create/message and stream connect "
        "latencies at p50/p95/p99 and error_rate, retry_rate (lower is better); events_per_s, "
        "turns_per_s, goodput_per_s (higher is better). A figure missing or measured by no "
        "turn in either report is n/a and never a regression. Two capacity.json files (from "
        "'chatload capacity') compare feasible_max: a regression when it fell by more than "
        "PCT %%. Exit 0: no regression; 1: a figure regressed; 2: a file could not be read."
    )
    parser.add_argument("base", metavar="BASE_JSON", type=Path, help="the baseline report.json")
    parser.add_argument("new", metavar="NEW_JSON", type=Path, help="the report.json to judge")
    parser.add_argument(
        "--max-regression",
        metavar="PCT",
        type=_percent,
        default=DEFAULT_MAX_REGRESSION,
        help="a figure regressed when it got worse by more than PCT %% of its base value "
        f"(default {DEFAULT_MAX_REGRESSION:g}). error_rate and retry_rate must also rise by "
        "more than PCT/100 percentage points (10 -> 0.1 points), which alone decides when "
        "their base is 0",
    )


def _change(row: Row) -> str:
    if row.change_pct is not None:
        return f"{row.change_pct:+.1f} %"
    if row.base is None or row.new is None:
        return fmt.NA
    # From a base of 0 (figures are never negative): the rise itself.
    if row.new == row.base:
        return "0.0 %"
    if row.figure in fmt.RATIOS:
        return f"{row.new * 100:+.2f} points"
    return f"+{fmt.figure(row.figure, row.new)} from 0"


def _name(path: str) -> str:
    alias = ALIASES.get(path.partition(".")[0])
    return f"{path} ({alias})" if alias else path


def _describe(report: Report, path: Path, role: str) -> list[str]:
    run = report.run
    lines = [f"{role}: {path} ({run.scenario}, {fmt.when(run.started_at)})"]
    if not run.complete:
        reasons = "; ".join(run.incomplete_reasons) or "no reason recorded"
        lines.append(f"  note: {role} is an INCOMPLETE run ({reasons})")
    return lines


def _is_capacity(path: Path) -> bool:
    """A capacity.json (by its name, or its keys) rather than a run's report.json."""
    if path.name == "capacity.json":
        return True
    try:
        head = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    return isinstance(head, dict) and "feasible_max" in head


def compare_capacity(args: argparse.Namespace) -> int:
    """Two capacity searches: a regression when ``feasible_max`` fell by more than
    ``--max-regression`` percent (or to nothing)."""
    try:
        base, new = load_capacity(args.base), load_capacity(args.new)
    except (OSError, ValueError) as exc:
        print(f"chatload compare: {exc}", file=sys.stderr)
        return 2
    unit = "users" if base.dimension == "users" else "turns/s"
    print(f"base: {args.base}: {verdict_line(base)}")
    print(f"new:  {args.new}: {verdict_line(new)}")
    if base.dimension != new.dimension:
        print("chatload compare: one search is over users, the other over arrival rate")
        return 2
    if base.slos != new.slos:
        print("  note: the searches held different SLOs")
    a, b = base.feasible_max, new.feasible_max
    if a is None:
        print()
        print("The base found no capacity: nothing to regress from.")
        return 0
    if b is None:
        print()
        print(f"REGRESSION: feasible_max fell from {a:g} {unit} to none")
        return 1
    change = (b - a) / a * 100
    print()
    print(f"feasible_max {a:g} -> {b:g} {unit} ({change:+.1f} %)")
    if change < -args.max_regression:
        print(f"REGRESSION: more than {args.max_regression:g} % below the base")
        return 1
    print(f"No regression past {args.max_regression:g} %.")
    return 0


def main(args: argparse.Namespace) -> int:
    if _is_capacity(args.base) or _is_capacity(args.new):
        return compare_capacity(args)
    try:
        base, new = read_report(args.base), read_report(args.new)
    except ReportFileError as exc:
        print(f"chatload compare: {exc}", file=sys.stderr)
        return 2
    rows = compare(base, new, args.max_regression)
    table = [("figure", "base", "new", "change", "verdict")] + [
        (
            _name(row.figure),
            fmt.figure(row.figure, row.base),
            fmt.figure(row.figure, row.new),
            _change(row),
            row.verdict,
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    print("\n".join([*_describe(base, args.base, "base"), *_describe(new, args.new, "new")]))
    if base.run.scenario != new.run.scenario:
        print("  note: the reports are of different scenarios")
    print()
    for line in table:
        cells = [
            line[0].ljust(widths[0]),
            *(c.rjust(w) for c, w in zip(line[1:4], widths[1:4], strict=True)),
        ]
        print("  ".join([*cells, line[4]]))
    regressed = [row.figure for row in rows if row.verdict == "REGRESSION"]
    limit = f"{args.max_regression:g} %"
    if regressed:
        print(f"\n{len(regressed)} figure(s) regressed past {limit}: {', '.join(regressed)}")
        return 1
    print(f"\nNo figure regressed past {limit}.")
    return 0
