"""A log-linear histogram with HdrHistogram's bucket layout, in plain Python.

Why not the ``hdrhistogram`` package: its ``record_value`` costs ~850 ns (pure Python over a
ctypes array); a sparse dict keyed by HDR's counts index costs a few hundred, and recording
is on the per-frame path. The layout is HDR's for 3 significant digits (2048 sub-buckets), so
values, percentiles and the exported counts agree with HDR's (``tests/unit`` checks that),
and two histograms merge exactly by adding counts.
"""

from __future__ import annotations

from typing import Final

#: 3 significant digits -> 2 * 10**3 rounded up to a power of two, as HDR does.
SUB_BUCKET_BITS: Final = 11
SUB_BUCKET_COUNT: Final = 1 << SUB_BUCKET_BITS
SUB_BUCKET_HALF: Final = SUB_BUCKET_COUNT >> 1
#: Values are clamped into [1, 1 hour in microseconds] for latencies recorded in µs; other
#: units (ns decode time, counts) use the same cap, ample for them.
HIGHEST_TRACKABLE: Final = 3_600_000_000_000


def counts_index(value: int) -> int:
    """HDR's counts index of a non-negative integer value."""
    if value < SUB_BUCKET_COUNT:
        return value
    shift = value.bit_length() - SUB_BUCKET_BITS
    return ((shift + 1) << (SUB_BUCKET_BITS - 1)) + (value >> shift) - SUB_BUCKET_HALF


def lowest_equivalent(index: int) -> int:
    """The smallest value that lands in ``index``."""
    if index < SUB_BUCKET_COUNT:
        return index
    shift = (index >> (SUB_BUCKET_BITS - 1)) - 1
    return ((index & (SUB_BUCKET_HALF - 1)) + SUB_BUCKET_HALF) << shift


def highest_equivalent(index: int) -> int:
    """The largest value that lands in ``index``."""
    if index < SUB_BUCKET_COUNT:
        return index
    shift = (index >> (SUB_BUCKET_BITS - 1)) - 1
    return lowest_equivalent(index) + (1 << shift) - 1


class Histogram:
    """Counts of integer values (µs for latencies), with exact count, sum, min and max."""

    __slots__ = ("count", "counts", "max", "min", "total")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.count = 0
        self.total = 0
        self.min = 0
        self.max = 0

    def record(self, value: int) -> None:
        """One value; the hot path (per frame), so written for CPython's speed."""
        if value < SUB_BUCKET_COUNT:
            if value < 0:
                value = 0
            index = value
        else:
            if value > HIGHEST_TRACKABLE:
                value = HIGHEST_TRACKABLE
            shift = value.bit_length() - SUB_BUCKET_BITS
            index = ((shift + 1) << (SUB_BUCKET_BITS - 1)) + (value >> shift) - SUB_BUCKET_HALF
        counts = self.counts
        counts[index] = counts.get(index, 0) + 1
        count = self.count
        if value > self.max:
            self.max = value
        if value < self.min or not count:
            self.min = value
        self.count = count + 1
        self.total += value

    def record_many(self, value: int, n: int) -> None:
        """``n`` equal values at once (zero gaps between the parts of one frame)."""
        if n <= 0:
            return
        self.record(value)
        if n > 1:
            index = counts_index(min(max(value, 0), HIGHEST_TRACKABLE))
            self.counts[index] += n - 1
            self.count += n - 1
            self.total += (n - 1) * min(max(value, 0), HIGHEST_TRACKABLE)

    def merge(self, other: Histogram) -> None:
        if not other.count:
            return
        counts = self.counts
        for index, n in other.counts.items():
            counts[index] = counts.get(index, 0) + n
        self.min = other.min if not self.count else min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.count += other.count
        self.total += other.total

    def minus(self, earlier: Histogram) -> Histogram:
        """What was recorded after ``earlier`` (a copy of this histogram taken before).
        Exact per bucket; min and max come from the buckets left, within their precision."""
        left = Histogram()
        for index, n in self.counts.items():
            rest = n - earlier.counts.get(index, 0)
            if rest > 0:
                left.counts[index] = rest
        if not left.counts:
            return left
        left.count = sum(left.counts.values())
        left.total = max(0, self.total - earlier.total)
        low, high = min(left.counts), max(left.counts)
        left.min = max(self.min, lowest_equivalent(low))
        left.max = min(self.max, highest_equivalent(high))
        return left

    def count_above(self, value: int) -> int:
        """Values recorded that are surely above ``value``: those in buckets wholly above it
        (a bucket that holds ``value`` itself is not counted, so this never overcounts)."""
        return sum(n for index, n in self.counts.items() if lowest_equivalent(index) > value)

    def value_at_percentile(self, percentile: float) -> int:
        """HDR's answer: the highest value equivalent to the bucket holding that rank.

        The result never exceeds the exact maximum, and ``percentile == 0`` gives the minimum.
        """
        if not self.count:
            return 0
        if percentile <= 0:
            return self.min
        target = max(1, int(percentile / 100.0 * self.count + 0.5))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= target:
                return min(highest_equivalent(index), self.max)
        return self.max

    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def to_wire(self) -> list[int]:
        """Compact form: ``[count, total, min, max, index, n, index, n, ...]``."""
        flat = [self.count, self.total, self.min, self.max]
        for index in sorted(self.counts):
            flat.append(index)
            flat.append(self.counts[index])
        return flat

    @classmethod
    def from_wire(cls, flat: list[int]) -> Histogram:
        hist = cls()
        if not flat:
            return hist
        hist.count, hist.total, hist.min, hist.max = flat[0], flat[1], flat[2], flat[3]
        it = iter(flat[4:])
        hist.counts = dict(zip(it, it, strict=True))
        return hist

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Histogram) and self.to_wire() == other.to_wire()

    __hash__ = None  # type: ignore[assignment]
