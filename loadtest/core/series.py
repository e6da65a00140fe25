"""The run's time series declared once: a 1-second bucket's columns and what each becomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from loadtest.core.histogram import Histogram

NS_PER_S: Final = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a 1-second bucket (it merges across processes by addition)."""

    #: Its name in the bucket (and its place in the measurement's wire list).
    name: str
    #: Its field in ``report.json``'s time-series point and ``timeseries.csv``.
    point: str
    #: ``count``: an integer as kept; ``per_s``: the second's total as a rate (a float);
    #: ``kb_as_mb``: KiB shown as MB, None where nothing was sampled.
    unit: Literal["count", "per_s", "kb_as_mb"] = "count"
    #: Named by the contract: a point read back without it is an error.
    contract: bool = False
    formula: str = ""


#: The columns, in ``report.json``'s order: the bucket's list and each time-series point's
#: fields (after ``t``, before the latencies' percentiles) follow it.
COLUMNS: Final = (
    Column(
        "active_streams",
        "active_streams",
        contract=True,
        formula="the streams open at the second's last sample, all load processes",
    ),
    Column(
        "generator_rss_kb",
        "generator_memory_mb",
        "kb_as_mb",
        formula="the load processes' resident memory, the latest sample of each, together",
    ),
    Column("frames", "frames_per_s", "per_s", contract=True),
    Column("events", "events_per_s", "per_s", contract=True),
    Column("turns_completed", "turns_completed", contract=True),
    Column("errors", "errors", contract=True),
    Column("retries", "retries", contract=True),
    Column("bytes", "bytes_per_s", "per_s"),
    Column("turns_started", "turns_started"),
)
#: The columns' names, in the bucket's order.
SERIES_COLUMNS: Final = tuple(c.name for c in COLUMNS)
#: Each column's index in a bucket's list, by name.
INDEX: Final = {name: i for i, name in enumerate(SERIES_COLUMNS)}


@dataclass
class SecondBucket:
    """One wall-clock second of one process: its columns and its per-second latencies."""

    columns: list[int] = field(default_factory=lambda: [0] * len(SERIES_COLUMNS))
    latencies: dict[str, Histogram] = field(default_factory=dict)

    def latency(self, name: str, us: int) -> None:
        """One value of a ``figures.SERIES_LATENCIES`` latency, in µs, in this second."""
        hist = self.latencies.get(name)
        if hist is None:
            hist = self.latencies[name] = Histogram()
        hist.record(us)

    def to_wire(self) -> list[object]:
        return [self.columns, {k: h.to_wire() for k, h in self.latencies.items()}]


def second_of(t: int, origin_ns: int, origin_epoch_s: float) -> tuple[int, int]:
    """The wall-clock second holding monotonic ``t`` and its end (monotonic ns), given that
    ``origin_ns`` happened at ``origin_epoch_s``."""
    key = int((origin_epoch_s + (t - origin_ns) / NS_PER_S) // 1)
    return key, origin_ns + int((key + 1 - origin_epoch_s) * NS_PER_S)


def point_values(columns: list[int]) -> dict[str, float | int | None]:
    """A bucket's columns as a time-series point's fields."""
    out: dict[str, float | int | None] = {}
    for column, n in zip(COLUMNS, columns, strict=True):
        if column.unit == "per_s":
            out[column.point] = float(n)
        elif column.unit == "kb_as_mb":
            out[column.point] = round(n / 1024, 1) or None
        else:
            out[column.point] = n
    return out
