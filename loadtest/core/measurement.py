"""A recorder's figures as plain data, the unit that travels between processes; ``merge``.

JSON- and msgpack-safe. Measurements add exactly: N workers' measurements merged equal one recorder
fed everything (counts and histogram buckets add, maxima take the max, levels add, and of
the sample turns' timelines each band keeps the least, as each recorder does).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from loadtest.core.histogram import Histogram
from loadtest.core.series import SERIES_COLUMNS

#: Completed turns' timelines are kept one per band of durations this wide (a ratio): the
#: shortest of each band, for the report's typical turn.
TIMELINE_BAND: Final = 1.25


def timeline_band(duration_us: int) -> str:
    """The band of durations a timeline of ``duration_us`` (at least 1) falls in."""
    return str(int(math.log(duration_us) / math.log(TIMELINE_BAND)))


def keep_timeline(timelines: dict[str, list[Any]], timeline: list[Any]) -> None:
    """Keep ``timeline`` (``[duration µs, steps, segments]``) if it is the least of its band."""
    band = timeline_band(timeline[0])
    kept = timelines.get(band)
    if kept is None or timeline < kept:
        timelines[band] = timeline


@dataclass
class Measurement:
    """A recorder's figures as plain data. ``+`` merges exactly; ``to_dict`` ships it."""

    latency: dict[str, list[int]] = field(default_factory=dict)
    dist: dict[str, list[int]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    maxima: dict[str, int] = field(default_factory=dict)
    errors: list[list[Any]] = field(default_factory=list)
    series: dict[str, list[Any]] = field(default_factory=dict)
    levels: dict[str, int] = field(default_factory=dict)
    #: Completed turns' timelines, one per band of durations (``Recorder._keep_timeline``):
    #: band -> ``[duration µs, steps, [[kind, label, start µs, end µs], ...]]``.
    timelines: dict[str, list[Any]] = field(default_factory=dict)

    def __add__(self, other: Measurement) -> Measurement:
        return merge([self, other])

    def to_dict(self) -> dict[str, Any]:
        return {
            "latency": self.latency,
            "dist": self.dist,
            "counts": self.counts,
            "maxima": self.maxima,
            "errors": self.errors,
            "series": self.series,
            "levels": self.levels,
            "timelines": self.timelines,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Measurement:
        return cls(
            latency=dict(data.get("latency") or {}),
            dist=dict(data.get("dist") or {}),
            counts=dict(data.get("counts") or {}),
            maxima=dict(data.get("maxima") or {}),
            errors=[list(row) for row in data.get("errors") or ()],
            series=dict(data.get("series") or {}),
            levels=dict(data.get("levels") or {}),
            timelines=dict(data.get("timelines") or {}),
        )

    def histogram(self, name: str) -> Histogram:
        """A latency (µs) or distribution histogram by name; empty if never recorded."""
        wire = self.latency.get(name) or self.dist.get(name) or []
        return Histogram.from_wire(wire)

    def count(self, name: str) -> int:
        return int(self.counts.get(name, 0))

    def counts_under(self, prefix: str) -> dict[str, int]:
        """The counts named ``prefix + label``, by label, sorted (counts broken down by a
        label: reconnects by cause, retries by kind, watch events by kind)."""
        return {
            name.removeprefix(prefix): int(n)
            for name, n in sorted(self.counts.items())
            if name.startswith(prefix)
        }

    def since(self, baseline: Measurement) -> Measurement:
        """What happened after ``baseline`` (an earlier measurement of the same recorders): a
        step's figures without its warm-up. Counts, buckets, errors and series seconds
        subtract; maxima, levels and timelines are this measurement's (a peak is not undone,
        a sample not unpicked)."""

        def minus(now: Mapping[str, list[int]], then: Mapping[str, list[int]]) -> dict[str, Any]:
            left = {
                name: Histogram.from_wire(wire).minus(Histogram.from_wire(then.get(name) or []))
                for name, wire in now.items()
            }
            return {name: hist.to_wire() for name, hist in left.items() if hist.count}

        before = {tuple(row[:-1]): row[-1] for row in baseline.errors}
        errors = [
            [*row[:-1], row[-1] - before.get(tuple(row[:-1]), 0)]
            for row in self.errors
            if row[-1] > before.get(tuple(row[:-1]), 0)
        ]
        series = {}
        for second, (columns, hists) in self.series.items():
            old = baseline.series.get(second)
            if old is None:
                series[second] = [columns, hists]
                continue
            left = [now - then for now, then in zip(columns, old[0], strict=True)]
            if any(left):
                series[second] = [left, minus(hists, old[1])]
        return Measurement(
            latency=minus(self.latency, baseline.latency),
            dist=minus(self.dist, baseline.dist),
            counts={k: n - baseline.counts.get(k, 0) for k, n in self.counts.items()},
            maxima=dict(self.maxima),
            errors=errors,
            series=series,
            levels=dict(self.levels),
            timelines=dict(self.timelines),
        )

    def level(self, name: str) -> int:
        return int(self.levels.get(name, 0))


def _merge_hists(into: dict[str, Histogram], wires: Mapping[str, list[int]]) -> None:
    for name, wire in wires.items():
        hist = into.get(name)
        if hist is None:
            hist = into[name] = Histogram()
        hist.merge(Histogram.from_wire(wire))


def merge(measurements: Iterable[Measurement]) -> Measurement:
    """The exact sum of measurements: counts and histogram buckets add, maxima take the max."""
    latency: dict[str, Histogram] = {}
    dist: dict[str, Histogram] = {}
    counts: dict[str, int] = {}
    maxima: dict[str, int] = {}
    levels: dict[str, int] = {}
    errors: dict[tuple[Any, ...], int] = {}
    series: dict[str, tuple[list[int], dict[str, Histogram]]] = {}
    timelines: dict[str, list[Any]] = {}
    for measured in measurements:
        _merge_hists(latency, measured.latency)
        _merge_hists(dist, measured.dist)
        for name, n in measured.counts.items():
            counts[name] = counts.get(name, 0) + n
        for name, n in measured.maxima.items():
            maxima[name] = max(maxima.get(name, 0), n)
        for name, n in measured.levels.items():
            levels[name] = levels.get(name, 0) + n
        for row in measured.errors:
            key = tuple(row[:-1])
            errors[key] = errors.get(key, 0) + row[-1]
        for second, (columns, hists) in measured.series.items():
            mine = series.get(second)
            if mine is None:
                mine = series[second] = ([0] * len(SERIES_COLUMNS), {})
            for i, n in enumerate(columns):
                mine[0][i] += n
            _merge_hists(mine[1], hists)
        for band, timeline in measured.timelines.items():
            kept = timelines.get(band)
            if kept is None or timeline < kept:
                timelines[band] = timeline
    return Measurement(
        latency={k: h.to_wire() for k, h in latency.items()},
        dist={k: h.to_wire() for k, h in dist.items()},
        counts=counts,
        maxima=maxima,
        levels=levels,
        errors=[[*key, n] for key, n in sorted(errors.items(), key=lambda kv: repr(kv[0]))],
        series={
            k: [cols, {n: h.to_wire() for n, h in hists.items()}]
            for k, (cols, hists) in sorted(series.items(), key=lambda kv: int(kv[0]))
        },
        timelines=dict(sorted(timelines.items(), key=lambda kv: int(kv[0]))),
    )
