"""``LocustRun``: one load test through Locust, local or master + workers -> merged measurement.

It takes resolved settings (the preflight done, tokens in hand) and returns the merged
measurement, the reasons the run is incomplete, and Locust's environment (for Locust's own
files). It runs in the calling process, and can be called again and again there: each run
gets its own Locust ``Events``, its own user classes (their fixed counts are class
attributes), its own runtime handed to the users through the environment, and removes its
signal handlers when it ends. In-process, because a caller such as the capacity search
then reads each step's measurement directly, and a step costs no interpreter start; worker
processes are started for each run and stopped after it. ``chatload run`` is this plus flags
in and a report out.
"""

from __future__ import annotations

import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import gevent
import locust
from locust.env import Environment
from locust.event import Events
from locust.exception import RPCError
from locust.runners import LocalRunner, MasterRunner
from locust.stats import PERCENTILES_TO_REPORT, StatsCSVFileWriter

from loadtest import __version__
from loadtest.core.measurement import Measurement
from loadtest.core.recorder import REPLAY_PREFIX
from loadtest.locust import distributed, join, runtime
from loadtest.locust.collector import MISSING, Collector
from loadtest.locust.shape import ScenarioShape
from loadtest.locust.users import ChatUser, OpenLoopUser, ReplayUser, StormUser, StreamWatcher
from loadtest.report.model import WorkerNode
from loadtest.runner import processes
from loadtest.runner.progress import RunProgress
from loadtest.runner.prometheus import MetricsServer
from loadtest.runner.web import WebUi

WORKER_CONNECT_TIMEOUT_S = 60.0
#: How often a replay asks whether every chat of the trace has ended (a merged measurement).
REPLAY_CHECK_S = 1.0
#: Once the expected workers joined, how long others that connected get to join or leave.
SETTLE_TIMEOUT_S = 5.0
#: How often the master says how many workers joined, while it waits for remote ones.
WAITING_LINE_S = 10.0
#: Beyond the stop timeout, how long the master waits for workers' final measurements.
FINALS_TIMEOUT_S = 30.0

#: Called about every 0.25 s with the seconds since the start and a way to take a measurement.
Tick = Callable[[float, Callable[[], Measurement]], None]
#: As a tick, and may end the run early by answering why (the capacity search's steps).
Monitor = Callable[[float, Callable[[], Measurement]], str | None]


@dataclass(frozen=True)
class RemoteWorkers:
    """``--master``: workers on other machines (``chatload worker``) join at this address."""

    expect: int
    #: ``*``: every interface, as Locust's ``--master-bind-host``.
    bind_host: str = "*"
    bind_port: int = join.MASTER_PORT
    max_wait_s: float = 600.0


@dataclass
class RunResult:
    measurement: Measurement
    #: Empty when the run is complete: interrupted, or which worker was lost.
    incomplete_reasons: list[str]
    started_at: datetime
    ended_at: datetime
    duration_s: float
    environment: Environment
    #: The run's id: ``report.json``'s ``run.run_id``, the ``run_id`` of ``--prometheus``.
    run_id: str = ""
    #: Why a monitor ended the run before its run time, if it did.
    stopped_early: str | None = None
    #: The workers that joined (none in a one-process run).
    worker_nodes: list[WorkerNode] = field(default_factory=list)


class LocustRun:
    """One run of ``settings`` with ``tokens``; ``run()`` once per instance."""

    def __init__(
        self,
        settings: runtime.RunSettings,
        tokens: list[str],
        *,
        locust_csv: Path | None = None,
        progress: RunProgress | None = None,
        monitor: Monitor | None = None,
        metrics: MetricsServer | None = None,
        metrics_wait: float = 0.0,
        remote: RemoteWorkers | None = None,
        web: WebUi | None = None,
    ) -> None:
        self.settings = settings
        self.tokens = tokens
        self.locust_csv = locust_csv
        self.progress = progress
        self.monitor = monitor
        #: ``--prometheus``: live figures on /metrics while the run lasts.
        self.metrics = metrics
        #: ``--prometheus-wait``: seconds the final figures stay on /metrics after the run.
        self.metrics_wait = metrics_wait
        #: ``--master``: the workers are on other machines; none are started here.
        self.remote = remote
        #: ``--web``: Locust's web UI, with the chatload tab, while the run lasts.
        self.web = web
        #: Coder's scaletest labels every series with its run's id; ours is a UUID.
        self.run_id = str(uuid.uuid4())
        self.runtime = runtime.install(settings, tokens)

    def _user_classes(self) -> tuple[list[type[locust.User]], int]:
        """This run's user classes (fresh subclasses, same names as the workers' ones) and
        how many users they add up to at full load."""
        scenario, workers = self.settings.scenario, self.worker_count
        users = scenario.load.users
        if self.settings.replay is not None:
            # One replaying user per load process: each starts its share of the chats.
            count = max(1, workers)
            return [type("ReplayUser", (ReplayUser,), {"fixed_count": count})], count
        if users is None:
            count = max(1, workers)
            return [type("OpenLoopUser", (OpenLoopUser,), {"fixed_count": count})], count
        watchers = users * scenario.chat.watchers_per_chat
        driver = StormUser if scenario.load.shape == "storm" else ChatUser
        classes: list[type[locust.User]] = [type(driver.__name__, (driver,), {})]
        if watchers:
            classes.append(type("StreamWatcher", (StreamWatcher,), {"fixed_count": watchers}))
        return classes, users + watchers

    @property
    def worker_count(self) -> int:
        return self.remote.expect if self.remote else self.settings.scenario.load.workers

    def run(self) -> RunResult:
        load = self.settings.scenario.load
        workers = self.worker_count
        user_classes, total_users = self._user_classes()
        replay = self.settings.replay
        steady = load.users is None or load.shape == "steady" or replay is not None
        shape = None if steady else ScenarioShape()
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
        roster = join.Roster()
        if workers:
            runner = self._master(env, roster)
            helpers = distributed.install(env, self.runtime, collector)
            if self.remote is None:
                worker_procs = [
                    processes.WorkerProcess.start(runner.master_bind_port) for _ in range(workers)
                ]
            try:
                self._wait_for_workers(runner, roster, worker_procs)
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
            roster.closed = True
            started_at = datetime.now(UTC)
            start = time.monotonic()
            if shape is not None:
                runner.start_shape()
            else:
                # Open loop and replay: the schedulers all start at once; closed: ramp at
                # spawn_rate.
                at_once = load.users is None or replay is not None
                rate = float(total_users) if at_once else load.spawn_rate
                runner.start(total_users, spawn_rate=rate)
            lost: list[str] = []
            finals: set[str] = set()

            def measured(series: bool) -> Measurement:
                if workers:
                    return collector.merged(series)
                return self.runtime.recorder.measurement(series=series)

            def live() -> Measurement:
                """What the live views read (progress, /metrics, the web tab): no time
                series, which none shows and whose cost grows with the run (ten minutes at
                60 turns/s: 47 ms of a measurement's 52, a block of the loop every 2 s)."""
                return measured(False)

            def whole() -> Measurement:
                """The monitor's: a capacity step subtracts its warm-up baseline from the
                step's measurement (``Measurement.since``), series and all."""
                return measured(True)

            if self.metrics is not None:
                self.metrics.start(live, self.run_id)
            if self.web is not None:
                self.web.start(env, live)
                print(
                    f"chatload run: Locust's web UI on {self.web.url}", file=sys.stderr, flush=True
                )

            stopped_early: str | None = None
            next_check = time.monotonic() + REPLAY_CHECK_S
            while time.monotonic() - start < load.run_time and not interrupted:
                gevent.sleep(0.25)
                if runner.state == "stopped":
                    # The shape's end; else someone pressed Stop in Locust's web UI.
                    if shape is None and self.web is not None:
                        interrupted.append("stopped from Locust's web UI")
                    break
                if (
                    isinstance(runner, MasterRunner)
                    and len(_missing(runner, worker_procs)) >= workers
                ):
                    break
                if self.progress is not None:
                    self.progress.maybe_print(time.monotonic() - start, live)
                if self.monitor is not None:
                    stopped_early = self.monitor(time.monotonic() - start, whole)
                    if stopped_early is not None:
                        break
                if replay is not None and not replay.loop and time.monotonic() >= next_check:
                    next_check = time.monotonic() + REPLAY_CHECK_S
                    if replayed(live, len(replay.chats)):
                        break  # the trace's last turn has ended

            runner.stop()
            if isinstance(runner, MasterRunner):
                expected = set(collector.workers) | set(runner.clients)
                timeout = load.stop_timeout + FINALS_TIMEOUT_S
                missing = collector.wait_for_finals(runner, expected, timeout)
                lost = [_lost(roster, node, worker_procs) for node in missing]
                finals = set(collector.finals)
                measurement = collector.merged()
            else:
                measurement = self.runtime.recorder.measurement()
            ended_at = datetime.now(UTC)
            duration = time.monotonic() - start
            if self.metrics is not None and self.metrics_wait > 0:
                _linger(self.metrics_wait, interrupted)
        finally:
            if self.metrics is not None:
                self.metrics.stop()
            if self.web is not None:
                self.web.stop()
            for handler in handlers:
                handler.cancel()
            gevent.killall(helpers)
            if writer is not None:
                writer.close_files()
            runner.quit()
            for proc in worker_procs:
                proc.stop()
        return RunResult(
            measurement=measurement,
            incomplete_reasons=[*dict.fromkeys(interrupted), *(f"lost {w}" for w in lost)],
            started_at=started_at,
            ended_at=ended_at,
            duration_s=round(duration, 3),
            environment=env,
            run_id=self.run_id,
            stopped_early=stopped_early,
            worker_nodes=[
                WorkerNode(
                    id=node,
                    hostname=hello.hostname,
                    address=hello.address,
                    pid=hello.pid,
                    version=hello.version,
                    final=node in finals,
                )
                for node, hello in sorted(roster.hellos.items())
                if node in roster.joined
            ],
        )

    def _master(self, env: Environment, roster: join.Roster) -> MasterRunner:
        """The master runner, listening for workers, offering them this run."""
        host, port = "127.0.0.1", processes.free_port()
        if self.remote is not None:
            host, port = self.remote.bind_host, self.remote.bind_port
        try:
            runner = env.create_master_runner(host, port)
        except RPCError as exc:
            raise processes.ProcessError(
                f"cannot listen for workers on {host}:{port}: {exc}"
            ) from None

        def refused(line: str) -> None:
            print(f"chatload run: {line}", file=sys.stderr, flush=True)

        distributed.offer_run(
            runner, self.runtime, roster, __version__, refused, expected=self.worker_count
        )
        return runner

    def _wait_for_workers(
        self, runner: MasterRunner, roster: join.Roster, procs: list[processes.WorkerProcess]
    ) -> None:
        """Until the expected workers joined, and every other that connected joined or left
        (Locust hands users to every worker it knows when the run starts)."""
        expected = self.worker_count
        remote = self.remote
        limit = remote.max_wait_s if remote is not None else WORKER_CONNECT_TIMEOUT_S
        start = time.monotonic()
        next_line = start

        def present() -> int:
            """Joined, and still connected (one that joined and died does not count)."""
            return len(roster.joined & runner.clients.keys())

        while present() < expected:
            dead = [p.describe() for p in procs if p.exited]
            if dead:
                raise processes.ProcessError(f"a worker process failed to start: {dead[0]}")
            now = time.monotonic()
            if now - start > limit:
                raise processes.ProcessError(
                    f"only {present()} of {expected} workers joined in {limit:.0f} s"
                )
            if remote is not None and now >= next_line:
                print(
                    f"chatload run: waiting for workers on {remote.bind_host}:{remote.bind_port}: "
                    f"{present()} of {expected} joined",
                    file=sys.stderr,
                    flush=True,
                )
                next_line = now + WAITING_LINE_S
            gevent.sleep(0.1)
        settle = time.monotonic() + SETTLE_TIMEOUT_S
        while set(runner.clients) - roster.joined and time.monotonic() < settle:
            gevent.sleep(0.1)


def _missing(runner: MasterRunner, procs: list[processes.WorkerProcess]) -> list[str]:
    """Workers gone mid-run: local processes that exited, workers whose heartbeats stopped."""
    gone = [p.describe() for p in procs if p.exited]
    return gone + [node.id for node in runner.clients.values() if node.state == MISSING]


def _lost(roster: join.Roster, node: str, procs: list[processes.WorkerProcess]) -> str:
    """A worker without a final measurement, named by where it ran (and how its process ended,
    when it was started here)."""
    hello = roster.hellos.get(node)
    ended = [p.describe() for p in procs if hello is not None and p.proc.pid == hello.pid]
    how = f"; {ended[0]}" if ended else ""
    return f"{roster.name(node)} (no final snapshot{how})"


def replayed(live: Callable[[], Measurement], chats: int) -> bool:
    """Every chat of a replay (all processes together) has ended."""
    return live().count(REPLAY_PREFIX + "chats_ended") >= chats


def _linger(seconds: float, interrupted: list[str]) -> None:
    """``--prometheus-wait``: the run is over and /metrics serves its final figures; wait
    for Prometheus's last scrape, cut short by SIGINT or SIGTERM (the run stays complete)."""
    print(
        f"chatload run: serving the final figures on /metrics for {seconds:g} s "
        "(--prometheus-wait)",
        file=sys.stderr,
        flush=True,
    )
    signals = len(interrupted)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(interrupted) == signals:
        gevent.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
    del interrupted[signals:]
