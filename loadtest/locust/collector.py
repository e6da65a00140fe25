"""The master's view of its workers' measurements, and how a measurement travels in Locust's messages.

No Locust inside (it patches the process with gevent when imported), so the collector is
unit-tested with a made-up master; ``distributed.py`` wires it into Locust's events.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

import orjson
from gevent.event import Event

from loadtest.core.measurement import Measurement, merge

REPORT_KEY = "chatload_snapshot"
FINAL_MESSAGE = "chatload_final"
#: ``locust.runners.STATE_MISSING``: a worker whose heartbeats stopped.
MISSING = "missing"


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


class Collector:
    """The master's view of its workers' measurements."""

    def __init__(self) -> None:
        self.latest: dict[str, Measurement] = {}
        self.finals: dict[str, Measurement] = {}
        self.workers: set[str] = set()
        self._arrived = Event()

    def on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        packed = data.get(REPORT_KEY)
        if packed is not None:
            self.workers.add(client_id)
            self.latest[client_id] = unpack(packed)

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

    def merged(self) -> Measurement:
        """Finals where they came, else the last periodic measurement of that worker."""
        return merge(
            self.finals[w] if w in self.finals else self.latest[w]
            for w in self.workers
            if w in self.finals or w in self.latest
        )
