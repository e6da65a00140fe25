"""Locust integration through its documented events: snapshots travel worker -> master.

- Every stats interval, each worker adds its cumulative recorder snapshot to Locust's
  ``report_to_master`` payload; the master keeps the latest per worker (for live progress,
  and as the best data left of a worker that dies).
- On ``test_stop`` (after its users stopped) each worker pushes a *final* snapshot with a
  custom message. The master waits for a final from every worker it ran, or for that worker
  to be lost: a handshake, not a fixed sleep. A lost worker makes the run incomplete.
"""

from __future__ import annotations

from typing import Any

from gevent import Greenlet
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadtest.locust import runtime
from loadtest.locust.collector import FINAL_MESSAGE, REPORT_KEY, Collector, pack


def install(
    environment: Environment, rt: runtime.Runtime, collector: Collector | None = None
) -> list[Greenlet]:
    """Wire this process's runtime into its environment's events once its runner exists;
    returns the greenlets started (a caller that runs again stops them)."""
    runner = environment.runner
    started = [] if isinstance(runner, MasterRunner) else [runtime.start_health_sampler(rt)]

    def stopping(**_: Any) -> None:
        rt.stopping = True
        # The generator's health is judged while it makes load: tearing users down (sockets
        # closed, chats archived) stalls the loop in ways no load would, and is not sampled.
        for sampler in started:
            sampler.kill(block=False)

    environment.events.test_stopping.add_listener(stopping)
    if isinstance(runner, WorkerRunner):

        def report(client_id: str, data: dict[str, Any], **_: Any) -> None:
            data[REPORT_KEY] = pack(rt.recorder.snapshot())

        def final(**_: Any) -> None:
            runner.send_message(FINAL_MESSAGE, pack(rt.recorder.snapshot()))

        environment.events.report_to_master.add_listener(report)
        environment.events.test_stop.add_listener(final)
    elif isinstance(runner, MasterRunner):
        assert collector is not None, "the master needs a Collector"
        environment.events.worker_report.add_listener(collector.on_worker_report)
        runner.register_message(FINAL_MESSAGE, collector.on_final)
    return started
