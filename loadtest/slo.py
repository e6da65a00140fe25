"""SLO expressions: ``time_to_first_output.p95 < 2000ms``, ``error_rate < 1%``.

A figure is a report path below ``latency_ms``, ``distributions``, ``counts`` or ``rates``;
units are ``ms``, ``s``, ``%`` or none. Latencies compare in ms, ratios in 0..1.
"""

from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from loadtest.metrics.recorder import DISTRIBUTIONS, LATENCIES
from loadtest.metrics.report import Counts, Rates, Report, SloCheck, SloResult, Summary

_EXPR = re.compile(
    r"^\s*(?P<figure>[a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)?)\s*(?P<op><=|>=|<|>|==)\s*"
    r"(?P<value>-?\d+(?:\.\d+)?)\s*(?P<unit>ms|s|%)?\s*$"
)
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}
#: Per-turn figures: a turn counts towards goodput when it is within their bounds.
PER_TURN = frozenset(
    {"time_to_running", "time_to_first_output", "time_to_terminal_status", "time_per_output_token"}
)


class SloError(ValueError):
    pass


#: Statistics of a latency or distribution figure (none given: p50).
STATISTICS = tuple(Summary.model_fields)
#: Single-number figures: the report's rates and counts.
SCALARS = (*Rates.model_fields, *Counts.model_fields)


def known_figures() -> list[str]:
    """Every figure an SLO may bound, spelled as an SLO spells it."""
    stats = [f"{name}.{stat}" for name in (*LATENCIES, *DISTRIBUTIONS) for stat in STATISTICS]
    return [*stats, *SCALARS]


def _check_figure(expr: str, figure: str) -> None:
    head, dot, stat = figure.partition(".")
    if head in LATENCIES or head in DISTRIBUTIONS:
        if dot and stat not in STATISTICS:
            raise SloError(
                f"SLO {expr!r}: {head} has no statistic {stat!r}; use one of "
                + ", ".join(STATISTICS)
            )
        return
    if head in SCALARS:
        if dot:
            raise SloError(f"SLO {expr!r}: {head} is a single number; write it without '.{stat}'")
        return
    close = difflib.get_close_matches(figure, known_figures(), n=4, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise SloError(
        f"SLO {expr!r}: unknown figure {figure!r}{hint} (figures: a latency such as "
        "time_to_first_output.p95, or a rate or count such as error_rate)"
    )


@dataclass(frozen=True, slots=True)
class Slo:
    expr: str
    figure: str
    op: str
    #: The bound in the figure's own unit: ms for latencies, 0..1 for ratios.
    bound: float

    def holds(self, observed: float) -> bool:
        return _OPS[self.op](observed, self.bound)

    @property
    def latency(self) -> str | None:
        head = self.figure.partition(".")[0]
        return head if head in LATENCIES else None


def parse_slo(expr: str) -> Slo:
    match = _EXPR.match(expr)
    if match is None:
        raise SloError(
            f"SLO {expr!r} is not 'FIGURE OP NUMBER[UNIT]', e.g. "
            "'time_to_first_output.p95 < 2000ms' or 'error_rate < 1%'"
        )
    figure, op, unit = match["figure"], match["op"], match["unit"]
    _check_figure(expr, figure)
    value = float(match["value"])
    head = figure.partition(".")[0]
    if head in LATENCIES:
        if unit == "%":
            raise SloError(f"SLO {expr!r}: a latency takes ms or s, not %")
        value = value * 1000.0 if unit == "s" else value
    elif unit == "%":
        value /= 100.0
    elif unit in ("ms", "s"):
        raise SloError(f"SLO {expr!r}: {head} is not a latency; use % or no unit")
    return Slo(expr=expr.strip(), figure=figure, op=op, bound=value)


def per_turn_bounds(slos: list[Slo]) -> dict[str, int]:
    """µs bounds a single turn must meet to count as goodput (from ``<``/``<=`` SLOs)."""
    bounds: dict[str, int] = {}
    for slo in slos:
        name = slo.latency
        if name in PER_TURN and slo.op in ("<", "<="):
            bound = int(slo.bound * 1000)
            bounds[name] = min(bounds.get(name, bound), bound)
    return bounds


def evaluate(report: Report, slos: list[Slo]) -> SloResult:
    checks = []
    for slo in slos:
        observed = report.figure(slo.figure)
        passed = observed is not None and slo.holds(observed)
        checks.append(SloCheck(expr=slo.expr, observed=observed, passed=passed))
    return SloResult(passed=all(c.passed for c in checks), checks=checks)
