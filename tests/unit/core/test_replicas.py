"""One replica's tally: what its methods count and how it reaches a measurement's wire."""

from __future__ import annotations

from loadtest.core.histogram import Histogram
from loadtest.core.replicas import REPLICA_COUNTS, ReplicaTally


def test_a_fresh_tally_writes_zero_counts_and_no_latency() -> None:
    counts: dict[str, int] = {}
    latency: dict[str, list[int]] = {}
    ReplicaTally().to_wire(0, counts, latency)
    assert counts == {f"replica.0.{name}": 0 for name in REPLICA_COUNTS}
    assert latency == {}


def test_streams_frames_events_and_errors_add_up() -> None:
    tally = ReplicaTally()
    tally.stream_opened()
    tally.stream_opened()
    tally.frame(3)
    tally.frame(0)
    tally.error()
    assert (tally.streams, tally.frames, tally.events, tally.errors) == (2, 2, 3, 1)


def test_integrity_breaks_accumulate_by_name_and_reach_the_wire() -> None:
    tally = ReplicaTally()
    tally.integrity_break("seq_gaps", 2)
    tally.integrity_break("seq_gaps", 3)
    tally.integrity_break("duplicate_parts", 1)
    counts: dict[str, int] = {}
    tally.to_wire(4, counts, {})
    assert counts["replica.4.seq_gaps"] == 5
    assert counts["replica.4.duplicate_parts"] == 1
    assert not any(key.startswith("replica.0.") for key in counts)


def test_first_output_lands_in_the_replica_latency_once_recorded() -> None:
    tally = ReplicaTally()
    tally.first_output(1_500)
    tally.first_output(2_500)
    latency: dict[str, list[int]] = {}
    tally.to_wire(1, {}, latency)
    hist = Histogram.from_wire(latency["replica.1.time_to_first_output"])
    assert hist.count == 2
    assert (hist.min, hist.max, hist.total) == (1_500, 2_500, 4_000)
