"""Measurements merge exactly: N recorders merged equal one fed everything; merge is associative."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from loadtest.core.measurement import Measurement, merge
from loadtest.core.meter import StreamMeter
from loadtest.core.recorder import Recorder
from loadtest.core.tracker import TurnTracker
from loadtest.core.turn import ErrorInfo
from tests.unit.events import array_frame, message, part, status
from tests.unit.samples import feed_some


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=5))
def test_merged_measurements_equal_one_recorder_fed_everything(seeds: list[int]) -> None:
    one = Recorder(origin_ns=0, origin_epoch_s=1_800_000_000.0)
    parts = []
    for seed in seeds:
        feed_some(one, seed, frames=3)
        recorder = Recorder(origin_ns=0, origin_epoch_s=1_800_000_000.0)
        feed_some(recorder, seed, frames=3)
        parts.append(recorder.measurement())
    merged = merge(parts)
    assert merged == one.measurement()
    assert merged.count("frames") == one.measurement().count("frames") > 0


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30))
def test_merge_is_associative_and_survives_the_wire(a: int, b: int, c: int) -> None:
    snaps = []
    for seed in (a, b, c):
        recorder = Recorder(origin_ns=0, origin_epoch_s=1_800_000_000.0)
        feed_some(recorder, seed, frames=2)
        # As shipped from a worker: bytes and back.
        snaps.append(
            Measurement.from_dict(orjson.loads(orjson.dumps(recorder.measurement().to_dict())))
        )
    x, y, z = snaps
    assert (x + y) + z == x + (y + z) == merge([z, x, y])


def test_measurement_size_does_not_grow_with_traffic() -> None:
    recorder = Recorder()
    tracker = TurnTracker(recorder)
    meter = StreamMeter(recorder, tracker)
    tracker.start(0)
    meter.feed(array_frame(message(1), status("running")), 1)
    frame = array_frame(part(), part())
    for i in range(100_000):  # 100,000 frames over 10 seconds
        meter.feed(frame, 2 + i * 100_000)
    size = len(orjson.dumps(recorder.measurement().to_dict()))
    assert recorder.measurement().count("events") == 200_002
    assert size < 4_000


def test_since_a_baseline_leaves_exactly_what_came_after() -> None:
    recorder = Recorder()
    for value in (1_000, 2_000, 3_000):
        recorder.latency["time_to_first_output"].record(value)
    recorder.counts["frames"] += 5
    recorder.error(ErrorInfo("decode", "bad"), 0)
    baseline = recorder.measurement()
    for value in (40_000, 50_000):
        recorder.latency["time_to_first_output"].record(value)
    recorder.counts["frames"] += 2
    recorder.error(ErrorInfo("decode", "bad"), 0)
    recorder.error(ErrorInfo("timeout", "slow"), 0)
    after = recorder.measurement().since(baseline)
    ttft = after.histogram("time_to_first_output")
    assert ttft.count == 2 and ttft.total == 90_000
    assert 39_900 <= ttft.min <= 40_000 and ttft.max == 50_000  # bucket precision at the low end
    assert after.count("frames") == 2
    assert sorted((row[0], row[-1]) for row in after.errors) == [("decode", 1), ("timeout", 1)]


def test_sample_timelines_merge_by_the_least_per_band_and_travel() -> None:
    """Each band keeps its shortest turn, as one recorder fed every turn would: the same
    whichever process saw which turn."""
    a = Measurement(timelines={"30": [1_000, 2, [["wait", "step 1", 0, 10]]]})
    b = Measurement(
        timelines={"30": [900, 1, [["stream", "step 1", 0, 900]]], "40": [20_000, 3, []]}
    )
    for merged in (merge([a, b]), merge([b, a])):
        assert merged.timelines == {"30": b.timelines["30"], "40": [20_000, 3, []]}
    assert Measurement.from_dict(merge([a, b]).to_dict()).timelines == merge([a, b]).timelines
    # A step's figures keep the later measurement's samples (a sample cannot be subtracted).
    assert merge([a, b]).since(a).timelines == merge([a, b]).timelines
