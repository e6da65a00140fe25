"""The time series' declared columns: a bucket's wire form, the second a moment falls in,
and a bucket's columns as a report point's fields."""

from __future__ import annotations

import pytest

from loadtest.core.histogram import Histogram
from loadtest.core.series import (
    COLUMNS,
    INDEX,
    NS_PER_S,
    SERIES_COLUMNS,
    SecondBucket,
    point_values,
    second_of,
)


def test_the_columns_are_named_once_and_indexed_in_order() -> None:
    assert len(set(SERIES_COLUMNS)) == len(SERIES_COLUMNS)
    assert len({c.point for c in COLUMNS}) == len(COLUMNS)
    assert [INDEX[name] for name in SERIES_COLUMNS] == list(range(len(SERIES_COLUMNS)))
    # The contract's columns (report-contract.md) are all declared.
    contract = {c.point for c in COLUMNS if c.contract}
    assert {"active_streams", "frames_per_s", "events_per_s", "errors"} <= contract


def test_a_bucket_starts_at_zero_and_keeps_its_latencies_per_name() -> None:
    bucket = SecondBucket()
    assert bucket.to_wire() == [[0] * len(SERIES_COLUMNS), {}]
    bucket.columns[INDEX["frames"]] += 7
    bucket.latency("time_to_first_output", 1_000)
    bucket.latency("time_to_first_output", 3_000)
    columns, latencies = bucket.to_wire()
    assert columns == [7 if n == "frames" else 0 for n in SERIES_COLUMNS]
    assert isinstance(latencies, dict)
    hist = Histogram.from_wire(latencies["time_to_first_output"])
    assert (hist.count, hist.min, hist.max) == (2, 1_000, 3_000)


def test_two_buckets_do_not_share_their_columns() -> None:
    a, b = SecondBucket(), SecondBucket()
    a.columns[0] = 1
    assert b.columns[0] == 0


@pytest.mark.parametrize(
    ("t", "key", "end"),
    [
        # origin 5 s (monotonic) happened at epoch 100.25 s
        (5 * NS_PER_S, 100, 5 * NS_PER_S + 750_000_000),
        (5 * NS_PER_S + 749_999_999, 100, 5 * NS_PER_S + 750_000_000),
        (5 * NS_PER_S + 750_000_000, 101, 6 * NS_PER_S + 750_000_000),
        (4 * NS_PER_S, 99, 4 * NS_PER_S + 750_000_000),
    ],
)
def test_second_of_finds_the_wall_clock_second_and_its_end(t: int, key: int, end: int) -> None:
    assert second_of(t, 5 * NS_PER_S, 100.25) == (key, end)


def test_point_values_convert_each_unit() -> None:
    columns = [0] * len(SERIES_COLUMNS)
    columns[INDEX["active_streams"]] = 12
    columns[INDEX["frames"]] = 30
    columns[INDEX["generator_rss_kb"]] = 2048
    point = point_values(columns)
    assert point["active_streams"] == 12 and isinstance(point["active_streams"], int)
    assert point["frames_per_s"] == 30.0 and isinstance(point["frames_per_s"], float)
    assert point["generator_memory_mb"] == 2.0
    assert list(point) == [c.point for c in COLUMNS]


def test_unsampled_memory_is_none_not_zero() -> None:
    assert point_values([0] * len(SERIES_COLUMNS))["generator_memory_mb"] is None


def test_point_values_refuses_a_bucket_of_the_wrong_width() -> None:
    with pytest.raises(ValueError):
        point_values([0] * (len(SERIES_COLUMNS) - 1))
