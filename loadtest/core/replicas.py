"""One target replica's share of the streams, written only through its own methods."""

from __future__ import annotations

from typing import Final

from loadtest.core.figures import REPLICA_PREFIX
from loadtest.core.histogram import Histogram

#: The counts each replica keeps (besides its integrity breaks and its TTFT).
REPLICA_COUNTS: Final = ("streams", "frames", "events", "errors")


class ReplicaTally:
    """One target replica's share of the streams (``docs/metrics.md``, "Replicas"). Its
    figures are read as attributes and written only by these methods."""

    __slots__ = ("errors", "events", "frames", "integrity", "streams", "ttft")

    def __init__(self) -> None:
        self.streams = 0
        self.frames = 0
        self.events = 0
        self.errors = 0
        self.ttft = Histogram()
        #: Integrity breaks its streams showed, by name (``seq_gaps``, ...).
        self.integrity: dict[str, int] = {}

    def stream_opened(self) -> None:
        self.streams += 1

    def frame(self, events: int) -> None:
        """A data frame of ``events`` events read from it."""
        self.frames += 1
        self.events += events

    def error(self) -> None:
        """A failure on it: a bad frame, a stream that would not open or closed abnormally,
        a turn that failed."""
        self.errors += 1

    def integrity_break(self, name: str, n: int) -> None:
        """``n`` integrity breaks of one kind (an ``INTEGRITY_BREAKS`` name) on its streams."""
        self.integrity[name] = self.integrity.get(name, 0) + n

    def first_output(self, us: int) -> None:
        """A completed turn's time to first output (µs) on it."""
        self.ttft.record(us)

    def to_wire(self, index: int, counts: dict[str, int], latency: dict[str, list[int]]) -> None:
        """Its figures into a measurement's counts and latencies, as ``replica.<index>.<name>``."""
        prefix = f"{REPLICA_PREFIX}{index}."
        for name in REPLICA_COUNTS:
            counts[prefix + name] = getattr(self, name)
        for name, n in self.integrity.items():
            counts[prefix + name] = n
        if self.ttft.count:
            latency[prefix + "time_to_first_output"] = self.ttft.to_wire()
