"""The master's view of its workers' measurements, and how a measurement travels in Locust's messages.

No Locust inside (it patches the process with gevent when imported), so the collector is
unit-tested with a made-up master; ``distributed.py`` wires it into Locust's events.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any, Final, Protocol

import orjson
from gevent.event import Event

from loadtest.core.measurement import Measurement, merge
from loadtest.core.recorder import Recorder

REPORT_KEY = "chatload_snapshot"
FINAL_MESSAGE = "chatload_final"
#: ``locust.runners.STATE_MISSING``: a worker whose heartbeats stopped.
MISSING = "missing"
#: A worker's report carries the time series from this many seconds before the newest second
#: its last report carried: a second may still change just after it is sent (a frame read at
#: its end, recorded a moment later), and reports come every 3 s.
SERIES_RESENT_S: Final = 5


class LocustWorkerNode(Protocol):
    id: str
    state: str


class Master(Protocol):
    """What the collector reads of Locust's ``MasterRunner``."""

    @property
    def clients(self) -> Mapping[str, LocustWorkerNode]: ...


def pack(measurement: Measurement) -> dict[str, Any]:
    """As msgpack carries it inside Locust's messages: one JSON string in a dict."""
    return {"snapshot": orjson.dumps(measurement.to_dict()).decode()}


def unpack(data: dict[str, Any]) -> Measurement:
    return Measurement.from_dict(orjson.loads(data["snapshot"]))


class WorkerReports:
    """A worker's periodic measurements: every figure whole, and of the time series only the
    seconds that are new or may still change. The whole series grows with the run (an hour
    is 3,600 seconds, each with its histograms), and built, sent and merged every 3 s it
    became a block of both loops that grew with the run; the master keeps what came."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self._newest_sent = 0

    def next(self) -> Measurement:
        measured = self._recorder.measurement(series_from=self._newest_sent - SERIES_RESENT_S)
        if measured.series:
            self._newest_sent = max(map(int, measured.series))
        return measured


class Collector:
    """The master's view of its workers' measurements."""

    def __init__(self) -> None:
        #: Each worker's latest report, its time series every second its reports carried
        #: (``WorkerReports``: a report carries only the latest seconds).
        self.latest: dict[str, Measurement] = {}
        self.finals: dict[str, Measurement] = {}
        self.workers: set[str] = set()
        self._arrived = Event()

    def on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        packed = data.get(REPORT_KEY)
        if packed is not None:
            self.workers.add(client_id)
            measured = unpack(packed)
            kept = self.latest.get(client_id)
            if kept is not None:  # a second in both: the newer report's is the whole of it
                measured.series = {**kept.series, **measured.series}
            self.latest[client_id] = measured

    def on_final(self, msg: Any, **_: Any) -> None:
        self.workers.add(msg.node_id)
        self.finals[msg.node_id] = unpack(msg.data)
        self._arrived.set()

    def wait_for_finals(self, runner: Master, expected: set[str], timeout: float) -> list[str]:
        """Wait until every expected worker sent its final or is gone; returns the lost ones."""
        deadline = time.monotonic() + timeout
        while True:
            clients = runner.clients
            gone = {node.id for node in clients.values() if node.state == MISSING}
            gone |= expected - clients.keys()
            waiting = expected - set(self.finals) - gone
            if not waiting or time.monotonic() >= deadline:
                return sorted(expected - set(self.finals))
            self._arrived.clear()
            self._arrived.wait(timeout=0.2)

    def merged(self, series: bool = True) -> Measurement:
        """Finals where they came, else the last periodic measurement of that worker; without
        the time series when not ``series`` (a live view's: it costs the run's length)."""
        chosen = [
            self.finals[w] if w in self.finals else self.latest[w]
            for w in self.workers
            if w in self.finals or w in self.latest
        ]
        if not series:
            chosen = [dataclasses.replace(m, series={}) for m in chosen]
        return merge(chosen)
