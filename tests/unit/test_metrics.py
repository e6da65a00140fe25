"""Histograms agree with HdrHistogram; snapshots merge exactly; the report keeps the contract."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hdrh.histogram import HdrHistogram
from hypothesis import given, settings
from hypothesis import strategies as st

from loadtest.core.histogram import Histogram, counts_index, highest_equivalent, lowest_equivalent
from loadtest.core.meter import StreamMeter
from loadtest.core.recorder import Recorder
from loadtest.core.snapshot import Snapshot, merge
from loadtest.core.tracker import TurnTracker
from loadtest.core.turn import ErrorInfo
from loadtest.report.atomic import write_atomic
from loadtest.report.model import Load, RunInfo, Target, buckets, build_report
from tests.unit.events import MS, array_frame, message, part, retry, status

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


def feed_some(recorder: Recorder, seed: int, frames: int) -> None:
    """Drive a recorder through real turns, a retry, errors and pings."""
    tracker = TurnTracker(recorder)
    meter = StreamMeter(recorder, tracker)
    t = seed * 7 * MS
    for turn in range(frames):
        tracker.start(t)
        meter.feed(array_frame(message(2 * turn + 1), status("running")), t + 3 * MS)
        if (seed + turn) % 3 == 0:
            meter.feed(array_frame(retry(1, 1000)), t + 5 * MS)
        meter.feed(array_frame(*[part()] * ((seed + turn) % 5 + 1)), t + (10 + seed) * MS)
        meter.feed(
            array_frame(
                message(2 * turn + 2, "assistant", output_tokens=seed + 2),
                status("waiting" if turn % 4 else "error"),
            ),
            t + 900 * MS,
        )
        meter.feed(b'{"type":"ping"}', t + 901 * MS)
        meter.feed(b"not json", t + 902 * MS)
        recorder.request("chat_message_latency", (seed + 1) * MS)
        recorder.decode_time(1000 + seed)
        t += 1100 * MS


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=5))
def test_merged_snapshots_equal_one_recorder_fed_everything(seeds: list[int]) -> None:
    one = Recorder(origin_ns=0, origin_epoch_s=1_800_000_000.0)
    parts = []
    for seed in seeds:
        feed_some(one, seed, frames=3)
        recorder = Recorder(origin_ns=0, origin_epoch_s=1_800_000_000.0)
        feed_some(recorder, seed, frames=3)
        parts.append(recorder.snapshot())
    merged = merge(parts)
    assert merged == one.snapshot()
    assert merged.count("frames") == one.snapshot().count("frames") > 0


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30))
def test_merge_is_associative_and_survives_the_wire(a: int, b: int, c: int) -> None:
    snaps = []
    for seed in (a, b, c):
        recorder = Recorder(origin_ns=0, origin_epoch_s=1_800_000_000.0)
        feed_some(recorder, seed, frames=2)
        # As shipped from a worker: bytes and back.
        snaps.append(Snapshot.from_dict(orjson.loads(orjson.dumps(recorder.snapshot().to_dict()))))
    x, y, z = snaps
    assert (x + y) + z == x + (y + z) == merge([z, x, y])


def test_snapshot_size_does_not_grow_with_traffic() -> None:
    recorder = Recorder()
    tracker = TurnTracker(recorder)
    meter = StreamMeter(recorder, tracker)
    tracker.start(0)
    meter.feed(array_frame(message(1), status("running")), 1)
    frame = array_frame(part(), part())
    for i in range(100_000):  # 100,000 frames over 10 seconds
        meter.feed(frame, 2 + i * 100_000)
    size = len(orjson.dumps(recorder.snapshot().to_dict()))
    assert recorder.snapshot().count("events") == 200_002
    assert size < 4_000


def test_error_rows_are_capped() -> None:
    recorder = Recorder()
    for i in range(500):
        recorder.error(ErrorInfo("create_chat", f"distinct message {i}", status_code=500), 0)
    assert len(recorder.errors) == 201
    assert sum(recorder.errors.values()) == 500


def run_info(duration: float = 2.0) -> RunInfo:
    started = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)
    return RunInfo(
        started_at=started,
        ended_at=started,
        duration_s=duration,
        complete=True,
        scenario="smoke",
        workers=0,
        load=Load(mode="closed", users=1),
        target=Target(url="http://127.0.0.1:1", era="a"),
    )


def test_report_has_the_contract_keys_and_exact_rates() -> None:
    recorder = Recorder(origin_ns=0, origin_epoch_s=run_info().started_at.timestamp())
    feed_some(recorder, 1, frames=4)
    report = build_report(recorder.snapshot(), run_info(duration=2.0))
    data = orjson.loads(orjson.dumps(report.model_dump(mode="json")))
    assert set(data) >= {
        "schema_version",
        "tool",
        "run",
        "latency_ms",
        "distributions",
        "counts",
        "rates",
        "errors",
        "timeseries",
        "slo",
        "generator",
    }
    assert data["schema_version"] == 1 and data["tool"]["name"] == "chatload"
    assert set(data["run"]) >= {
        "started_at",
        "ended_at",
        "duration_s",
        "complete",
        "scenario",
        "workers",
        "load",
        "target",
    }
    for name in (
        "time_to_first_output",
        "time_to_terminal_status",
        "time_to_running",
        "chat_message_latency",
        "inter_frame_gap",
        "time_per_output_token",
    ):
        assert set(data["latency_ms"][name]) == {
            "count",
            "min",
            "mean",
            "p50",
            "p90",
            "p95",
            "p99",
            "p999",
            "max",
        }
    assert {"events_per_frame", "frame_bytes", "retries_per_turn"} <= set(data["distributions"])
    counts = data["counts"]
    # 4 turns: turn 0 ends in error, 3 complete; 3 data frames a turn, and one retry frame
    # (seed 1: turn 2); each turn also gets a ping and a bad frame, which are not data.
    assert (counts["turns_started"], counts["turns_completed"], counts["turns_failed"]) == (4, 3, 1)
    assert (counts["frames"], counts["pings"], counts["decode_errors"]) == (4 * 3 + 1, 4, 4)
    assert data["rates"]["frames_per_s"] == counts["frames"] / 2.0
    assert data["rates"]["error_rate"] == 0.25
    assert data["rates"]["retry_rate"] == counts["turns_retried"] / 4
    assert {
        "t",
        "active_streams",
        "frames_per_s",
        "events_per_s",
        "turns_completed",
        "errors",
        "retries",
    } <= set(data["timeseries"][0])
    assert sum(p["turns_completed"] for p in data["timeseries"]) == 3
    stages = {row["stage"] for row in data["errors"]}
    assert stages == {"decode", "status_error"}
    assert set(data["errors"][0]) == {
        "stage",
        "kind",
        "provider",
        "status_code",
        "retryable",
        "count",
        "message",
    }
    assert (
        report.figure("time_to_first_output.p95")
        == data["latency_ms"]["time_to_first_output"]["p95"]
    )
    assert report.figure("error_rate") == 0.25
    assert report.figure("no_such_figure.p50") is None


def test_generator_bottleneck_warning() -> None:
    recorder = Recorder()
    recorder.cpu_sample(97.0)
    recorder.loop_lag(2 * MS)
    report = build_report(recorder.snapshot(), run_info())
    assert report.generator.bottleneck and report.generator.cpu_percent_max == 97.0
    quiet = Recorder()
    quiet.cpu_sample(30.0)
    quiet.loop_lag(1 * MS)
    assert not build_report(quiet.snapshot(), run_info()).generator.bottleneck
    # One hiccup among a hundred samples is not a bottleneck; a lag at p99 is.
    hiccup = Recorder()
    for lag_ms in [1] * 199 + [400]:
        hiccup.loop_lag(lag_ms * MS)
    assert not build_report(hiccup.snapshot(), run_info()).generator.bottleneck
    for _ in range(3):
        hiccup.loop_lag(400 * MS)
    assert build_report(hiccup.snapshot(), run_info()).generator.bottleneck


def test_atomic_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "sub" / "report.json"
    write_atomic(target, b"first")
    assert target.read_bytes() == b"first"

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_atomic(target, b"second")
    assert target.read_bytes() == b"first"
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_integer_distributions_get_one_bucket_per_value() -> None:
    hist = Histogram()
    for value, n in ((1, 5), (2, 3), (3, 1)):
        hist.record_many(value, n)
    assert buckets(hist, 1.0) == [[1.0, 5], [2.0, 3], [3.0, 1]]
    wide = Histogram()
    for value in range(0, 400, 5):
        wide.record(value)
    rows = buckets(wide, 1.0)
    assert len(rows) == 40 and sum(n for _, n in rows) == 80 and rows[-1][0] == 395


def test_a_lost_workers_in_flight_turns_are_counted_as_lost() -> None:
    recorder = Recorder()
    recorder.counts.update(turns_started=61, turns_completed=59)
    report = build_report(recorder.snapshot(), run_info())
    assert report.counts.turns_lost == 2
