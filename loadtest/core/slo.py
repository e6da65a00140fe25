"""SLO expressions: ``time_to_first_output.p95 < 2000ms``, ``error_rate < 1%``.

A figure is any of ``core.figures`` (a latency or distribution with a statistic, or a count
or rate); units are ``ms``, ``s``, ``%`` or none. Latencies compare in ms, ratios in 0..1.
Expressions are checked against the figure list when parsed, before anything runs.
"""

from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from loadtest.core.figures import (
    BY_NAME,
    DISTRIBUTIONS,
    LATENCIES,
    PER_TURN,
    STATISTICS,
    slo_paths,
)

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


class SloError(ValueError):
    pass


class SloCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expr: str
    observed: float | None
    passed: bool


class SloResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    passed: bool = True
    checks: list[SloCheck] = Field(default_factory=list)


def _check_figure(expr: str, figure: str) -> None:
    head, dot, stat = figure.partition(".")
    if head in LATENCIES or head in DISTRIBUTIONS:
        if dot and stat not in STATISTICS:
            raise SloError(
                f"SLO {expr!r}: {head} has no statistic {stat!r}; use one of "
                + ", ".join(STATISTICS)
            )
        return
    if head in BY_NAME:
        if dot:
            raise SloError(f"SLO {expr!r}: {head} is a single number; write it without '.{stat}'")
        return
    close = difflib.get_close_matches(figure, slo_paths(), n=4, cutoff=0.6)
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

    @property
    def breach_share(self) -> float | None:
        """The share of samples that may exceed an upper bound before the figure does: 0.05
        for a p95, 0 for a max, the bound itself for ``error_rate``; None where the figure is
        no share of samples (a mean, a rate, a lower bound)."""
        if self.op not in ("<", "<="):
            return None
        if self.figure == "error_rate":
            return self.bound
        if self.latency is None:
            return None
        stat = self.figure.partition(".")[2] or "p50"
        if stat == "max":
            return 0.0
        if not stat.startswith("p"):
            return None
        digits = stat[1:]
        # p50 -> 50, p95 -> 95, p999 -> 99.9: HdrHistogram's naming of the percentiles.
        percentile = float(digits) if len(digits) <= 2 else float(f"{digits[:2]}.{digits[2:]}")
        return 1.0 - percentile / 100.0


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


def evaluate(figure: Callable[[str], float | None], slos: list[Slo]) -> SloResult:
    """Each SLO against ``figure`` (a report's lookup by SLO path; None: not measured)."""
    checks = []
    for slo in slos:
        observed = figure(slo.figure)
        passed = observed is not None and slo.holds(observed)
        checks.append(SloCheck(expr=slo.expr, observed=observed, passed=passed))
    return SloResult(passed=all(c.passed for c in checks), checks=checks)
