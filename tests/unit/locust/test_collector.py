"""The master's collector: finals win over periodic measurements, a lost worker's last measurement
still counts, and the wait for finals ends as soon as every worker answered or is gone."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace

import gevent

from loadtest.core.measurement import Measurement, merge
from loadtest.core.meter import StreamMeter
from loadtest.core.recorder import Recorder
from loadtest.core.tracker import TurnTracker
from loadtest.locust.collector import (
    MISSING,
    REPORT_KEY,
    SERIES_RESENT_S,
    Collector,
    WorkerReports,
    pack,
    unpack,
)
from tests.unit.events import MS, array_frame, message, part, status
from tests.unit.samples import feed_some


@dataclass
class Node:
    id: str
    state: str = "running"


@dataclass
class Master:
    nodes: dict[str, Node]
    looks: int = field(default=0)

    @property
    def clients(self) -> Mapping[str, Node]:
        self.looks += 1
        return self.nodes


def measurement(seed: int) -> Measurement:
    recorder = Recorder(origin_ns=0, origin_epoch_s=1_800_000_000.0)
    feed_some(recorder, seed, frames=2)
    return recorder.measurement()


def final(node: str, measured: Measurement) -> SimpleNamespace:
    return SimpleNamespace(node_id=node, data=pack(measured))


def test_a_measurement_survives_the_message_form() -> None:
    measured = measurement(3)
    assert unpack(pack(measured)) == measured


def test_finals_win_and_a_lost_workers_last_report_still_counts() -> None:
    collector = Collector()
    early_a, final_a, last_b = measurement(1), measurement(2), measurement(3)
    collector.on_worker_report("a", {REPORT_KEY: pack(early_a)})
    collector.on_worker_report("b", {REPORT_KEY: pack(last_b)})
    collector.on_final(final("a", final_a))
    assert collector.merged() == merge([final_a, last_b])


def test_reports_carry_the_latest_seconds_and_the_master_keeps_every_second() -> None:
    """A minute of turns, a report every 3 s: each report carries a few seconds of the
    series, not the run's; the master's view of the worker is the worker's whole
    measurement, exactly (series included), and a live view drops only the series."""
    recorder = Recorder(origin_ns=0, origin_epoch_s=1_800_000_000.0)
    tracker = TurnTracker(recorder)
    meter = StreamMeter(recorder, tracker)
    reports, collector = WorkerReports(recorder), Collector()
    sizes = []
    t, next_report = 0, 3000 * MS
    for turn in range(60):
        tracker.start(t)
        meter.feed(array_frame(message(2 * turn + 1), status("running")), t + 3 * MS)
        meter.feed(array_frame(part(), part()), t + 200 * MS)
        meter.feed(array_frame(message(2 * turn + 2, "assistant", text="xx")), t + 600 * MS)
        meter.feed(array_frame(status("waiting")), t + 601 * MS)
        t += 1000 * MS
        if t >= next_report:
            report = reports.next()
            sizes.append(len(report.series))
            collector.on_worker_report("w", {REPORT_KEY: pack(report)})
            next_report += 3000 * MS
    whole = recorder.measurement()
    assert len(whole.series) >= 60
    assert max(sizes[1:]) <= 3 + SERIES_RESENT_S + 1  # 3 s new, the re-sent ones, the current
    assert collector.merged() == whole
    assert collector.merged(series=False) == dataclasses.replace(whole, series={})


def test_the_wait_ends_at_once_when_every_worker_answered_or_is_gone() -> None:
    collector = Collector()
    collector.on_final(final("a", measurement(1)))
    master = Master({"a": Node("a"), "b": Node("b", MISSING)})
    # "c" left the master's list: gone too. One look, no waiting out the timeout.
    assert collector.wait_for_finals(master, {"a", "b", "c"}, timeout=600) == ["b", "c"]
    assert master.looks == 1


def test_a_final_that_arrives_during_the_wait_ends_it() -> None:
    collector = Collector()
    master = Master({"a": Node("a")})
    gevent.spawn_later(0.05, collector.on_final, final("a", measurement(1)))
    assert collector.wait_for_finals(master, {"a"}, timeout=600) == []
    assert collector.workers == {"a"}
