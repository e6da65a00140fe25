"""Numbers as a reader wants them: a unit, a precision that fits the size, ``n/a`` for none."""

from __future__ import annotations

from datetime import datetime

from loadtest.core.figures import LATENCIES

NA = "n/a"
#: Rates that are ratios (0..1), shown as percentages.
RATIOS = frozenset({"error_rate", "retry_rate"})


def number(value: float) -> str:
    """An ``int`` in full, thousands grouped; a float to about three significant figures."""
    if isinstance(value, int):
        return f"{value:,}"
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if size >= 1 else f"{value:.3g}"


def ms(value: float | None) -> str:
    return NA if value is None else f"{number(value)} ms"


def percent(ratio: float | None) -> str:
    return NA if ratio is None else f"{ratio * 100:.2f} %"


def per_s(value: float | None) -> str:
    return NA if value is None else f"{number(value)} /s"


def figure(path: str, value: float | None) -> str:
    """A figure named by its SLO path (``time_to_first_output.p95``) in its own unit."""
    head = path.partition(".")[0]
    if value is None:
        return NA
    if head in LATENCIES:
        return ms(value)
    if head in RATIOS:
        return percent(value)
    return per_s(value) if head.endswith("_per_s") else number(value)


def short(value: float) -> str:
    """An axis tick: ``1.5k``, ``2M``, ``0.25``."""
    size = abs(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def seconds(value: float) -> str:
    whole = int(value)
    if whole < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    clock = f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"
    return f"{value:,.1f} s ({clock})"
