"""Locust integration through its documented events: snapshots travel worker -> master.

- Every stats interval, each worker adds its cumulative recorder snapshot to Locust's
  ``report_to_master`` payload; the master keeps the latest per worker (for live progress,
  and as the best data left of a worker that dies).
- On ``test_stop`` (after its users stopped) each worker pushes a *final* snapshot with a
  custom message. The master waits for a final from every worker it ran, or for that worker
  to be lost: a handshake, not a fixed sleep. A lost worker makes the run incomplete.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from gevent import Greenlet
from gevent.event import Event
from locust.env import Environment
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

from loadtest.core.snapshot import Snapshot, merge
from loadtest.locust import runtime

REPORT_KEY = "chatload_snapshot"
FINAL_MESSAGE = "chatload_final"


def _pack(snapshot: Snapshot) -> dict[str, Any]:
    """As msgpack carries it inside Locust's messages: one JSON string in a dict."""
    return {"snapshot": orjson.dumps(snapshot.to_dict()).decode()}


def _unpack(data: dict[str, Any]) -> Snapshot:
    return Snapshot.from_dict(orjson.loads(data["snapshot"]))


class Collector:
    """The master's view of its workers' snapshots."""

    def __init__(self) -> None:
        self.latest: dict[str, Snapshot] = {}
        self.finals: dict[str, Snapshot] = {}
        self.workers: set[str] = set()
        self._arrived = Event()

    def on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        packed = data.get(REPORT_KEY)
        if packed is not None:
            self.workers.add(client_id)
            self.latest[client_id] = _unpack(packed)

    def on_final(self, msg: Any, **_: Any) -> None:
        self.workers.add(msg.node_id)
        self.finals[msg.node_id] = _unpack(msg.data)
        self._arrived.set()

    def wait_for_finals(
        self, runner: MasterRunner, expected: set[str], timeout: float
    ) -> list[str]:
        """Wait until every expected worker sent its final or is gone; returns the lost ones."""
        deadline = time.monotonic() + timeout
        while True:
            gone = {node.id for node in runner.clients.values() if node.state == STATE_MISSING} | (
                expected - set(runner.clients.keys())
            )
            waiting = expected - set(self.finals) - gone
            if not waiting or time.monotonic() >= deadline:
                return sorted(expected - set(self.finals))
            self._arrived.clear()
            self._arrived.wait(timeout=0.2)

    def merged(self) -> Snapshot:
        """Finals where they came, else the last periodic snapshot of that worker."""
        return merge(
            self.finals[w] if w in self.finals else self.latest[w]
            for w in self.workers
            if w in self.finals or w in self.latest
        )


def install(
    environment: Environment, rt: runtime.Runtime, collector: Collector | None = None
) -> list[Greenlet]:
    """Wire this process's runtime into its environment's events once its runner exists;
    returns the greenlets started (a caller that runs again stops them)."""
    runner = environment.runner
    started = [] if isinstance(runner, MasterRunner) else [runtime.start_health_sampler(rt)]

    def stopping(**_: Any) -> None:
        rt.stopping = True

    environment.events.test_stopping.add_listener(stopping)
    if isinstance(runner, WorkerRunner):

        def report(client_id: str, data: dict[str, Any], **_: Any) -> None:
            data[REPORT_KEY] = _pack(rt.recorder.snapshot())

        def final(**_: Any) -> None:
            runner.send_message(FINAL_MESSAGE, _pack(rt.recorder.snapshot()))

        environment.events.report_to_master.add_listener(report)
        environment.events.test_stop.add_listener(final)
    elif isinstance(runner, MasterRunner):
        assert collector is not None, "the master needs a Collector"
        environment.events.worker_report.add_listener(collector.on_worker_report)
        runner.register_message(FINAL_MESSAGE, collector.on_final)
    return started
