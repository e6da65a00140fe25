"""``LocustRun``: one load test through Locust, local or master + workers -> merged snapshot.

It takes resolved settings (the preflight done, tokens in hand) and returns the merged
snapshot, the reasons the run is incomplete, and Locust's environment (for Locust's own
files). It runs in the calling process, and can be called again and again there: each run
gets its own Locust ``Events``, its own user classes (their fixed counts are class
attributes), its own runtime handed to the users through the environment, and removes its
signal handlers when it ends. In-process, because a caller such as the capacity search
then reads each step's snapshot directly, and a step costs no interpreter start; worker
processes are started for each run and stopped after it. ``chatload run`` is this plus flags
in and a report out.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import gevent
import locust
from locust.env import Environment
from locust.event import Events
from locust.runners import LocalRunner, MasterRunner
from locust.stats import PERCENTILES_TO_REPORT, StatsCSVFileWriter

from loadtest.core.snapshot import Snapshot
from loadtest.locust import distributed, runtime
from loadtest.locust.collector import Collector
from loadtest.locust.shape import ScenarioShape
from loadtest.locust.users import ChatUser, OpenLoopUser, StreamWatcher
from loadtest.runner import processes
from loadtest.runner.progress import Progress
from loadtest.runner.prometheus import MetricsServer

WORKER_CONNECT_TIMEOUT_S = 60.0
#: Beyond the stop timeout, how long the master waits for workers' final snapshots.
FINALS_TIMEOUT_S = 30.0

#: Called about every 0.25 s with the seconds since the start and a way to take a snapshot.
Tick = Callable[[float, Callable[[], Snapshot]], None]
#: As a tick, and may end the run early by answering why (the capacity search's steps).
Monitor = Callable[[float, Callable[[], Snapshot]], str | None]


@dataclass
class RunResult:
    snapshot: Snapshot
    #: Empty when the run is complete: interrupted, or which worker was lost.
    incomplete_reasons: list[str]
    started_at: datetime
    ended_at: datetime
    duration_s: float
    environment: Environment
    #: Why a monitor ended the run before its run time, if it did.
    stopped_early: str | None = None


class LocustRun:
    """One run of ``settings`` with ``tokens``; ``run()`` once per instance."""

    def __init__(
        self,
        settings: runtime.RunSettings,
        tokens: list[str],
        *,
        locust_csv: Path | None = None,
        progress: Progress | None = None,
        monitor: Monitor | None = None,
        metrics: MetricsServer | None = None,
    ) -> None:
        self.settings = settings
        self.tokens = tokens
        self.locust_csv = locust_csv
        self.progress = progress
        self.monitor = monitor
        #: ``--prometheus``: live figures on /metrics while the run lasts.
        self.metrics = metrics
        self.runtime = runtime.install(settings, tokens)

    def _user_classes(self) -> tuple[list[type[locust.User]], int]:
        """This run's user classes (fresh subclasses, same names as the workers' ones) and
        how many users they add up to at full load."""
        scenario, workers = self.settings.scenario, self.settings.scenario.load.workers
        users = scenario.load.users
        if users is None:
            count = max(1, workers)
            return [type("OpenLoopUser", (OpenLoopUser,), {"fixed_count": count})], count
        watchers = users * scenario.chat.watchers_per_chat
        classes: list[type[locust.User]] = [type("ChatUser", (ChatUser,), {})]
        if watchers:
            classes.append(type("StreamWatcher", (StreamWatcher,), {"fixed_count": watchers}))
        return classes, users + watchers

    def run(self) -> RunResult:
        load = self.settings.scenario.load
        workers = load.workers
        user_classes, total_users = self._user_classes()
        shape = ScenarioShape() if load.users is not None and load.shape != "steady" else None
        env = Environment(
            user_classes=user_classes,
            shape_class=shape,
            events=Events(),
            host=self.settings.host,
            stop_timeout=load.stop_timeout,
        )
        runtime.attach(env, self.runtime)
        collector = Collector()
        worker_procs: list[processes.WorkerProcess] = []
        runner: LocalRunner | MasterRunner
        if workers:
            port = processes.free_port()
            runner = env.create_master_runner("127.0.0.1", port)
            helpers = distributed.install(env, self.runtime, collector)
            worker_env = self.settings.to_env(self.tokens)
            worker_procs = [
                processes.WorkerProcess.start(port, worker_env, load.stop_timeout)
                for _ in range(workers)
            ]
            try:
                _wait_for_workers(runner, worker_procs)
            except BaseException:
                runner.quit()
                for proc in worker_procs:
                    proc.stop()
                raise
        else:
            runner = env.create_local_runner()
            helpers = distributed.install(env, self.runtime)

        writer = None
        if self.locust_csv is not None:
            writer = StatsCSVFileWriter(env, PERCENTILES_TO_REPORT, str(self.locust_csv))
            helpers.append(gevent.spawn(writer.stats_writer))
        interrupted: list[str] = []

        def interrupt(name: str) -> None:
            if not interrupted:
                print(
                    f"chatload run: {name}: stopping; turns in flight get up to "
                    f"{load.stop_timeout:g} s to finish, then the report is written",
                    file=sys.stderr,
                    flush=True,
                )
            interrupted.append(f"interrupted by {name}")

        handlers = [
            gevent.signal_handler(signal.SIGINT, interrupt, "SIGINT"),
            gevent.signal_handler(signal.SIGTERM, interrupt, "SIGTERM"),
        ]
        try:
            started_at = datetime.now(UTC)
            start = time.monotonic()
            if shape is not None:
                runner.start_shape()
            else:
                # Open loop: the schedulers all start at once; closed: ramp at spawn_rate.
                rate = float(total_users) if load.users is None else load.spawn_rate
                runner.start(total_users, spawn_rate=rate)
            lost: list[str] = []

            def live() -> Snapshot:
                return collector.merged() if workers else self.runtime.recorder.snapshot()

            if self.metrics is not None:
                self.metrics.start(live)

            stopped_early: str | None = None
            while time.monotonic() - start < load.run_time and not interrupted:
                gevent.sleep(0.25)
                if shape is not None and runner.state == "stopped":
                    break
                lost = [w.describe() for w in worker_procs if w.exited]
                if workers and len(lost) == workers:
                    break
                if self.progress is not None:
                    self.progress.maybe_print(time.monotonic() - start, live)
                if self.monitor is not None:
                    stopped_early = self.monitor(time.monotonic() - start, live)
                    if stopped_early is not None:
                        break

            runner.stop()
            if isinstance(runner, MasterRunner):
                expected = set(collector.workers) | set(runner.clients)
                timeout = load.stop_timeout + FINALS_TIMEOUT_S
                missing = collector.wait_for_finals(runner, expected, timeout)
                lost = sorted({*lost, *(f"worker {m} (no final snapshot)" for m in missing)})
                snapshot = collector.merged()
            else:
                snapshot = self.runtime.recorder.snapshot()
            ended_at = datetime.now(UTC)
            duration = time.monotonic() - start
        finally:
            if self.metrics is not None:
                self.metrics.stop()
            for handler in handlers:
                handler.cancel()
            gevent.killall(helpers)
            if writer is not None:
                writer.close_files()
            runner.quit()
            for proc in worker_procs:
                proc.stop()
        return RunResult(
            snapshot=snapshot,
            incomplete_reasons=[*dict.fromkeys(interrupted), *(f"lost {w}" for w in lost)],
            started_at=started_at,
            ended_at=ended_at,
            duration_s=round(duration, 3),
            environment=env,
            stopped_early=stopped_early,
        )


def _wait_for_workers(runner: MasterRunner, procs: list[processes.WorkerProcess]) -> None:
    deadline = time.monotonic() + WORKER_CONNECT_TIMEOUT_S
    while runner.worker_count < len(procs):
        dead = [p.describe() for p in procs if p.exited]
        if dead:
            raise processes.ProcessError(f"a worker process failed to start: {dead[0]}")
        if time.monotonic() > deadline:
            raise processes.ProcessError(
                f"only {runner.worker_count} of {len(procs)} workers connected in "
                f"{WORKER_CONNECT_TIMEOUT_S:.0f} s"
            )
        gevent.sleep(0.1)
