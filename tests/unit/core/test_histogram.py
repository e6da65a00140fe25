"""The histogram agrees with HdrHistogram: layout, percentiles, wire form, exact merge."""

from __future__ import annotations

from hdrh.histogram import HdrHistogram
from hypothesis import given, settings
from hypothesis import strategies as st

from loadtest.core.histogram import Histogram, counts_index, highest_equivalent, lowest_equivalent

values = st.lists(st.integers(min_value=0, max_value=3_600_000_000), min_size=1, max_size=300)


@settings(max_examples=150, deadline=None)
@given(values, st.sampled_from([0.0, 1.0, 50.0, 90.0, 95.0, 99.0, 99.9, 100.0]))
def test_percentiles_match_hdrhistogram(data: list[int], percentile: float) -> None:
    ours, reference = Histogram(), HdrHistogram(1, 3_600_000_000, 3)
    for value in data:
        ours.record(value)
        reference.record_value(max(value, 1) if value else 0)
    expected = reference.get_value_at_percentile(percentile)
    if percentile == 0:
        assert ours.value_at_percentile(0) == min(data)
    else:
        assert ours.value_at_percentile(percentile) == min(expected, max(data))
    assert (ours.count, ours.min, ours.max, ours.total) == (
        len(data),
        min(data),
        max(data),
        sum(data),
    )


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=3_600_000_000_000))
def test_bucket_layout_is_hdrs(value: int) -> None:
    index = counts_index(value)
    assert lowest_equivalent(index) <= value <= highest_equivalent(index)
    # 3 significant digits: a bucket is never wider than 1/1024 of its values.
    assert highest_equivalent(index) - lowest_equivalent(index) <= max(value, 1) / 1024


def test_histogram_wire_round_trip_and_merge() -> None:
    a, b, both = Histogram(), Histogram(), Histogram()
    for v in (5, 70, 70, 123_456):
        a.record(v)
        both.record(v)
    for v in (1, 99_999_999):
        b.record(v)
        both.record(v)
    assert Histogram.from_wire(a.to_wire()) == a
    a.merge(b)
    assert a == both
    assert Histogram().value_at_percentile(99) == 0


def test_count_above_counts_only_buckets_wholly_above_the_value() -> None:
    histogram = Histogram()
    for value in (100, 399_000, 400_000, 401_000, 900_000, 900_000):
        histogram.record(value)
    # 401 ms and up are surely above 400 ms; 400 ms's own bucket is not counted.
    assert histogram.count_above(400_000) == 3
    assert histogram.count_above(0) == 6
    assert histogram.count_above(1_000_000) == 0
    assert Histogram().count_above(5) == 0
