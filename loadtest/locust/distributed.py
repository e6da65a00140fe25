"""Locust integration through its documented events: measurements travel worker -> master.

- Every stats interval, each worker adds its cumulative recorder measurement to Locust's
  ``report_to_master`` payload, with only the latest seconds of its time series
  (``WorkerReports``); the master keeps the latest per worker, and every second of its
  series (for live progress, and as the best data left of a worker that dies).
- On ``test_stop`` (after its users stopped) each worker pushes a *final* measurement with a
  custom message. The master waits for a final from every worker it ran, or for that worker
  to be lost: a handshake, not a fixed sleep. A lost worker makes the run incomplete.
- Before all that a worker joins the master's run (``join.py``): it says hello, and is given
  the run's settings and tokens, or refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
from gevent import Greenlet
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadtest.locust import join, runtime, storm
from loadtest.locust.collector import (
    FINAL_MESSAGE,
    REPORT_KEY,
    Collector,
    WorkerReports,
    pack,
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
        # The generator's health is judged while it makes load: tearing users down (sockets
        # closed, chats archived) stalls the loop in ways no load would, and is not sampled.
        for sampler in started:
            sampler.kill(block=False)

    environment.events.test_stopping.add_listener(stopping)
    storm.install(environment, rt)  # a storm's barriers, when the profile is one
    if isinstance(runner, WorkerRunner):
        reports = WorkerReports(rt.recorder)

        def report(client_id: str, data: dict[str, Any], **_: Any) -> None:
            data[REPORT_KEY] = pack(reports.next())

        def final(**_: Any) -> None:
            runner.send_message(FINAL_MESSAGE, pack(rt.recorder.measurement()))

        environment.events.report_to_master.add_listener(report)
        environment.events.test_stop.add_listener(final)
    elif isinstance(runner, MasterRunner):
        assert collector is not None, "the master needs a Collector"
        environment.events.worker_report.add_listener(collector.on_worker_report)
        runner.register_message(FINAL_MESSAGE, collector.on_final)
    return started


def offer_run(
    runner: MasterRunner,
    rt: runtime.Runtime,
    roster: join.Roster,
    version: str,
    on_refused: Callable[[str], object],
    expected: int = 1,
) -> None:
    """Master: answer each worker's hello with this run (settings, tokens, its slot of
    ``expected``), or refuse it (another chatload version, or the roster closed: the run
    started); ``on_refused`` hears why, naming the worker."""
    settings_json = rt.settings.model_dump_json()
    offered: list[str] = []

    def hello(msg: Any, **_: Any) -> None:
        greeting = join.WorkerHello.from_message(msg.data)
        roster.hello(msg.node_id, greeting)
        reason = join.refusal(version, greeting)
        if reason is None and roster.closed:
            reason = "the run has already started; a worker joins before it starts"
        if reason is None:
            if msg.node_id not in offered:
                offered.append(msg.node_id)
            slot, slots = offered.index(msg.node_id), max(expected, len(offered))
            message = join.run_message(version, settings_json, rt.tokens, slot, slots)
            runner.send_message(join.RUN_MESSAGE, message, msg.node_id)
            return
        roster.refuse(msg.node_id, reason)
        runner.send_message(join.REFUSED_MESSAGE, {"reason": reason}, msg.node_id)
        on_refused(f"refused {greeting.describe()}: {reason}")

    def joined(msg: Any, **_: Any) -> None:
        roster.join(msg.node_id)

    runner.register_message(join.HELLO_MESSAGE, hello)
    runner.register_message(join.JOINED_MESSAGE, joined)


@dataclass
class Joining:
    """A worker's side of joining: the run it was given, or why it was refused."""

    runtime: runtime.Runtime | None = None
    refused: str | None = None


def join_master(environment: Environment, runner: WorkerRunner, hello: join.WorkerHello) -> Joining:
    """Worker: say hello to the master and, once given the run, become its worker (runtime,
    stop timeout, measurements to the master). Refused, the runner quits; it quits too once the
    run stopped and its final measurement is sent: a worker serves one run. (Locust's workers
    would wait for another, but the master has let go of them by then: its quit message
    reaches none.)"""
    joining = Joining()

    def refuse(reason: str) -> None:
        joining.refused = reason
        # Not from inside the runner's own message greenlet, which quit() kills.
        gevent.spawn(runner.quit)

    def run(msg: Any, **_: Any) -> None:
        if msg.data.get("version") != hello.version:
            refuse(
                f"the master runs chatload {msg.data.get('version')}, this worker {hello.version}"
            )
            return
        settings = runtime.RunSettings.model_validate_json(msg.data["settings"])
        rt = runtime.install(settings, [str(token) for token in msg.data["tokens"]])
        rt.slot, rt.slots = int(msg.data.get("slot", 0)), max(1, int(msg.data.get("slots", 1)))
        runtime.attach(environment, rt)
        environment.stop_timeout = settings.scenario.load.stop_timeout
        install(environment, rt)  # its test_stop listener sends the final measurement: first
        environment.events.test_stop.add_listener(lambda **_: gevent.spawn(runner.quit))
        joining.runtime = rt
        runner.send_message(join.JOINED_MESSAGE, {})

    def refused(msg: Any, **_: Any) -> None:
        refuse(str(msg.data.get("reason", "no reason given")))

    runner.register_message(join.RUN_MESSAGE, run)
    runner.register_message(join.REFUSED_MESSAGE, refused)
    runner.send_message(join.HELLO_MESSAGE, hello.to_message())
    return joining
