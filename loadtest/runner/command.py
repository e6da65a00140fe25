"""``chatload run``: check the target, run Locust (local, or master + workers), report, exit.

Exit codes (``docs/report-contract.md``): 0 ran and every SLO held; 1 an SLO failed (or, with
no SLO, a turn failed); 2 bad usage or configuration; 3 target unreachable or credentials
refused; 4 ran, but incomplete: an interrupted run, or one that lost a worker, still writes
its report, marked ``complete: false``, whatever its SLOs say.
"""

# Locust patches the standard library with gevent when imported: first, before httpx/ssl.
import argparse
import csv
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
import locust
from locust.env import Environment
from locust.runners import LocalRunner, MasterRunner
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV, StatsCSVFileWriter

from loadtest.core.slo import Slo, SloError, evaluate, parse_slo, per_turn_bounds
from loadtest.core.snapshot import Snapshot
from loadtest.locust import runtime
from loadtest.locust.distributed import Collector
from loadtest.locust.shapes import ScenarioShape
from loadtest.locust.users import ChatUser, OpenLoopUser, StreamWatcher
from loadtest.report.model import Load, Report, RunInfo, Target, build_report
from loadtest.runner import processes
from loadtest.runner.progress import Progress, print_summary
from loadtest.runner.target import TargetError, TargetInfo, inspect_target
from loadtest.scenario import Scenario, ScenarioError, load_scenario, parse_duration

DEFAULT_SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "smoke.toml"
WORKER_CONNECT_TIMEOUT_S = 60.0
#: ``chatload run``'s exit codes (``--help`` and docs/report-contract.md).
EXIT_PASSED, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INCOMPLETE = range(5)
FINALS_TIMEOUT_S = 30.0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = (
        "Run a load test of Coder's chats API and write a report.\n\n"
        "Without --host (or CODER_URL) chatload starts its simulated Coder server on a free\n"
        "127.0.0.1 port and tests against it. Every flag overrides the scenario file's key.\n\n"
        "examples:\n"
        "  chatload run                                   # smoke test against the simulator\n"
        "  chatload run -u 50 -r 10 -t 2m --workers 2     # 50 users, 2 worker processes\n"
        "  chatload run --arrival-rate 5 -t 60s           # open loop: 5 turns/s\n"
        "  chatload run --host https://coder.example.com --token $TOKEN \\\n"
        "      --slo 'time_to_first_output.p95 < 2000ms' --slo 'error_rate < 1%'\n\n"
        "Ctrl-C (or SIGTERM) stops the run like its end: no new turn starts, turns in flight\n"
        "get --stop-timeout to finish, and the report is written, marked incomplete.\n\n"
        "exit codes:\n"
        "  0  ran, and every SLO held (with no SLO: no turn failed)\n"
        "  1  ran, and an SLO failed (with no SLO: a turn failed)\n"
        "  2  bad usage or configuration; nothing was run\n"
        "  3  the target is unreachable, refused the token, or has chats switched off\n"
        "  4  ran, but incomplete (interrupted, or a worker was lost); the report is written"
    )
    add = parser.add_argument
    add("--scenario", type=Path, help=f"scenario file (TOML); default {DEFAULT_SCENARIO.name}")
    add("--host", help="deployment URL (or CODER_URL); absent: the embedded simulator")
    add(
        "--token",
        help="session token, never logged; CODER_SESSION_TOKEN is better (no other user of the "
        "machine sees it in ps); write --token=VALUE for a token that starts with '-'",
    )
    add("-u", "--users", type=_at_least(1), help="closed loop: concurrent users (load.users)")
    add("-r", "--spawn-rate", type=_positive, help="users started per second (load.spawn_rate)")
    add("--arrival-rate", type=_positive, help="open loop: turns started per second, Poisson")
    add(
        "-t",
        "--run-time",
        type=_duration(positive=True),
        help="run time: 30, 30s, 2m, 1h30m (load.run_time)",
    )
    add("--turns", type=_at_least(1), help="turns per conversation (chat.turns)")
    add(
        "--slo",
        action="append",
        default=[],
        metavar="EXPR",
        help="an SLO, repeatable: 'time_to_first_output.p95 < 2000ms', 'error_rate < 1%%'",
    )
    add(
        "--stop-timeout",
        type=_duration(positive=False),
        help="time turns in flight get to finish at the end, as 30 or 30s (default 30 s)",
    )
    add("--workers", type=_at_least(0), help="Locust worker processes (0: one local process)")
    add("--report-dir", type=Path, help="where to write reports (default reports/<time>-<name>)")
    add(
        "--era",
        choices=["auto", "a", "b", "c", "d"],
        help="protocol era of the target (default auto: detected); with the simulator, "
        "the era it speaks (a, b or d)",
    )
    add("--setup", type=Path, help="a file written by 'chatload setup' (tokens, target)")
    add("--quiet", action="store_true", help="no live progress lines")


def _at_least(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``low`` (argparse then blames the flag)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {value}")
        return value

    return parse


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def _duration(positive: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            seconds = parse_duration(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if positive and seconds <= 0:
            raise argparse.ArgumentTypeError(f"must be longer than 0, not {text!r}")
        return seconds

    return parse


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    load: dict[str, Any] = {}
    if args.users is not None:
        load.update(users=args.users, mode="closed")
    if args.spawn_rate is not None:
        load["spawn_rate"] = args.spawn_rate
    if args.arrival_rate is not None:
        load.update(arrival_rate=args.arrival_rate, mode="open")
    if args.run_time is not None:
        load["run_time"] = args.run_time
    if args.stop_timeout is not None:
        load["stop_timeout"] = args.stop_timeout
    if args.workers is not None:
        load["workers"] = args.workers
    chat = {"turns": args.turns} if args.turns is not None else {}
    target: dict[str, Any] = {}
    sim: dict[str, Any] = {}
    if args.era:
        target["era"] = args.era
        if args.era in ("a", "b", "d"):
            sim["era"] = args.era
    return {"load": load, "chat": chat, "target": target, "sim": sim}


class UsageError(Exception):
    """Bad flags or configuration: exit 2."""


def _plan(args: argparse.Namespace) -> tuple[Scenario, list[Slo], str | None, list[str]]:
    """Everything checked before a request is sent: a mistake here exits 2, never 3."""
    path = args.scenario or (DEFAULT_SCENARIO if DEFAULT_SCENARIO.exists() else None)
    try:
        scenario = load_scenario(path, _overrides(args))
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None
    # Flags win over the file: --slo replaces the scenario's [slo] checks.
    exprs, source = (args.slo, "--slo") if args.slo else (scenario.slo.checks, f"{path} [slo]")
    try:
        slos = [parse_slo(expr) for expr in exprs]
    except SloError as exc:
        raise UsageError(f"{source}: {exc}") from None
    host = args.host or os.environ.get("CODER_URL") or scenario.target.host
    tokens = [args.token or os.environ.get("CODER_SESSION_TOKEN") or ""]
    if args.setup is not None:
        from loadtest.deploy.setup_file import read_setup_file

        try:
            setup = read_setup_file(args.setup)
        except (OSError, ValueError) as exc:
            raise UsageError(f"{args.setup}: {exc}") from None
        host = args.host or setup.url
        tokens = setup.tokens
    if host:
        _check_host(host)
        if not all(tokens):
            raise UsageError(
                "no session token for " + host + ": pass --token or set CODER_SESSION_TOKEN "
                "(or prepare users with 'chatload setup' and pass --setup)"
            )
    return scenario, slos, host, tokens


def _check_host(host: str) -> None:
    parsed = urlsplit(host)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UsageError(
            f"--host {host!r} is not a URL with a scheme: write it as Coder's CLI takes it, "
            "e.g. https://coder.example.com or http://127.0.0.1:3000"
        )


def main(args: argparse.Namespace) -> int:
    try:
        scenario, slos, host, tokens = _plan(args)
    except UsageError as exc:
        print(f"chatload run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    sim: processes.SimProcess | None = None
    try:
        if not host:
            token = secrets.token_urlsafe(24)
            sim = processes.SimProcess.start(scenario.sim.era, token, scenario.sim.config)
            host, tokens = sim.url, [token]
        try:
            target = inspect_target(host, tokens, scenario.target.era)
        except TargetError as exc:
            print(f"chatload run: {exc}", file=sys.stderr)
            return EXIT_UNREACHABLE
        return _execute(scenario, slos, target, tokens, args)
    except processes.ProcessError as exc:
        print(f"chatload run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        # Before the load started (while the simulator or the preflight ran): nothing to report.
        print("chatload run: interrupted before the load started; no report", file=sys.stderr)
        return EXIT_INCOMPLETE
    finally:
        if sim is not None:
            sim.stop()


def _report_dir(args: argparse.Namespace, scenario: Scenario) -> Path:
    if args.report_dir is not None:
        return Path(args.report_dir)
    if scenario.report.dir:
        return Path(scenario.report.dir)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path("reports") / f"{stamp}-{scenario.name}"


def _execute(
    scenario: Scenario,
    slos: list[Slo],
    target: TargetInfo,
    tokens: list[str],
    args: argparse.Namespace,
) -> int:
    load = scenario.load
    workers = load.workers
    settings = runtime.RunSettings.for_target(
        scenario,
        target,
        turn_slos=per_turn_bounds(slos),
        process_arrival_rate=(load.arrival_rate / max(1, workers)) if load.arrival_rate else None,
    )
    rt = runtime.install(settings, tokens)
    report_dir = _report_dir(args, scenario)
    report_dir.mkdir(parents=True, exist_ok=True)

    import loadtest.locustfile  # noqa: F401  registers the init hooks

    if load.users is None:
        OpenLoopUser.fixed_count = max(1, workers)
        user_classes: list[type[locust.User]] = [OpenLoopUser]
        total_users = max(1, workers)
    else:
        StreamWatcher.fixed_count = load.users * scenario.chat.watchers_per_chat
        user_classes = [ChatUser, StreamWatcher] if StreamWatcher.fixed_count else [ChatUser]
        total_users = load.users + StreamWatcher.fixed_count
    shape = ScenarioShape() if load.mode == "closed" and load.shape != "steady" else None
    env = Environment(
        user_classes=user_classes,
        shape_class=shape,
        events=locust.events,
        host=target.url,
        stop_timeout=load.stop_timeout,
    )
    collector = Collector()
    env.chatload_collector = collector  # type: ignore[attr-defined]
    worker_procs: list[processes.WorkerProcess] = []
    if workers:
        port = processes.free_port()
        master = env.create_master_runner("127.0.0.1", port)
        env.events.init.fire(environment=env, runner=master, web_ui=None)
        worker_procs = [
            processes.WorkerProcess.start(port, settings.to_env(tokens), load.stop_timeout)
            for _ in range(workers)
        ]
        _wait_for_workers(master, worker_procs)
        runner: LocalRunner | MasterRunner = master
    else:
        runner = env.create_local_runner()
        env.events.init.fire(environment=env, runner=runner, web_ui=None)

    csv_writer = StatsCSVFileWriter(env, PERCENTILES_TO_REPORT, str(report_dir / "locust"))
    csv_greenlet = gevent.spawn(csv_writer.stats_writer)
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

    gevent.signal_handler(signal.SIGINT, interrupt, "SIGINT")
    gevent.signal_handler(signal.SIGTERM, interrupt, "SIGTERM")

    started_at = datetime.now(UTC)
    start = time.monotonic()
    if shape is not None:
        runner.start_shape()
    else:
        # Open loop: the schedulers all start at once; closed loop: users ramp at spawn_rate.
        rate = float(total_users) if load.mode == "open" else load.spawn_rate
        runner.start(total_users, spawn_rate=rate)
    progress = Progress(enabled=not args.quiet)
    lost: list[str] = []
    while time.monotonic() - start < load.run_time and not interrupted:
        gevent.sleep(0.25)
        if shape is not None and runner.state == "stopped":
            break
        lost = [w.describe() for w in worker_procs if w.exited]
        if workers and len(lost) == workers:
            break
        progress.maybe_print(
            time.monotonic() - start, lambda: _live_snapshot(rt, collector, workers)
        )

    runner.stop()
    if workers:
        assert isinstance(runner, MasterRunner)
        expected = set(collector.workers) | {c for c in runner.clients}
        missing = collector.wait_for_finals(runner, expected, load.stop_timeout + FINALS_TIMEOUT_S)
        lost = sorted({*lost, *(f"worker {m} (no final snapshot)" for m in missing)})
        snapshot = collector.merged()
    else:
        snapshot = rt.recorder.snapshot()
    ended_at = datetime.now(UTC)
    duration = time.monotonic() - start

    csv_greenlet.kill()
    csv_writer.close_files()
    _write_final_locust_csvs(env, report_dir / "locust")
    runner.quit()
    for proc in worker_procs:
        proc.stop()

    reasons = [*dict.fromkeys(interrupted), *(f"lost {w}" for w in lost)]
    run = RunInfo(
        started_at=started_at,
        ended_at=ended_at,
        duration_s=round(duration, 3),
        complete=not reasons,
        incomplete_reasons=reasons,
        scenario=scenario.name,
        workers=workers,
        load=Load(
            mode=load.mode,
            users=load.users,
            arrival_rate=load.arrival_rate,
        ),
        target=Target(
            url=target.url, era=_era(target, snapshot), server_version=target.server_version
        ),
    )
    report = build_report(snapshot, run, origin_epoch_s=started_at.timestamp())
    report.slo = evaluate(report.figure, slos)
    files = _write(report, report_dir, scenario, env)
    print_summary(report, files)
    return exit_code(report, slos)


def _era(target: TargetInfo, snapshot: Snapshot) -> str:
    """The era reported: from buildinfo, or for older servers from the frames themselves."""
    if target.era_from_stream and snapshot.count("streams_era_b") > snapshot.count("streams_era_a"):
        return "b"
    return target.era.value


def exit_code(report: Report, slos: list[Slo]) -> int:
    if not report.run.complete:
        return EXIT_INCOMPLETE
    if slos:
        return EXIT_PASSED if report.slo.passed else EXIT_FAILED
    return EXIT_FAILED if report.counts.turns_failed else EXIT_PASSED


def _live_snapshot(rt: runtime.Runtime, collector: Collector, workers: int) -> Snapshot:
    if workers:
        return collector.merged()
    return rt.recorder.snapshot()


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


def _write_final_locust_csvs(env: Environment, base: Path) -> None:
    """Locust's request, failure and exception CSVs as its stats stand at the end.

    Its writer samples once a second, so its files miss whatever ended after the last
    sample (turns finished in the stop timeout among them); they are written again whole.
    """
    final = StatsCSV(env, PERCENTILES_TO_REPORT)
    for suffix, write in (
        ("_stats.csv", final.requests_csv),
        ("_failures.csv", final.failures_csv),
        ("_exceptions.csv", final.exceptions_csv),
    ):
        with open(f"{base}{suffix}", "w", newline="") as file:
            write(csv.writer(file))


def _write(report: Report, report_dir: Path, scenario: Scenario, env: Environment) -> list[Path]:
    from loadtest.report.files import write_report_files

    files = write_report_files(
        report, report_dir, html=scenario.report.html, csv=scenario.report.csv
    )
    if scenario.report.html:
        from locust.html import get_html_report

        from loadtest.report.atomic import write_atomic

        locust_html = report_dir / "locust.html"
        write_atomic(locust_html, get_html_report(env, show_download_link=False).encode())
        files.append(locust_html)
    return files
