"""``chatload run``: flags -> plan (scenario, SLOs, target) -> ``LocustRun`` -> report -> exit code.

Exit codes (``docs/report-contract.md``): 0 ran and every SLO held; 1 an SLO failed (or, with
no SLO, a turn failed); 2 bad usage or configuration; 3 target unreachable or credentials
refused; 4 ran, but incomplete: an interrupted run, or one that lost a worker, still writes
its report, marked ``complete: false``, whatever its SLOs say.
"""

# Locust patches the standard library with gevent when imported: first, before httpx/ssl.
import locust  # noqa: F401, I001

import argparse
import os
import secrets
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from locust.env import Environment

from loadtest.client.preflight import TargetError, TargetInfo, inspect_replicas, split_hosts
from loadtest.client.server_metrics import ServerMetrics, endpoints, redacted
from loadtest.core.slo import Slo, SloError, evaluate, parse_slo, per_turn_bounds
from loadtest.core.snapshot import Snapshot
from loadtest.locust import runtime
from loadtest.locust.join import MASTER_PORT
from loadtest.report.files import write_report_files
from loadtest.report.locust_files import write_locust_csvs, write_locust_html
from loadtest.report.atomic import write_atomic
from loadtest.runner.prometheus import MetricsServer
from loadtest.runner.web import DEFAULT_ADDRESS as WEB_ADDRESS
from loadtest.runner.web import WebUi
from loadtest.report.junit import render_junit
from loadtest.report.model import Load, Report, RunInfo, Target, build_report, replay_section
from loadtest.report.server_metrics import build_server_metrics, server_metrics_line
from loadtest.runner import processes
from loadtest.runner.accounts import driving_users, shared_account_warning
from loadtest.trace.files import read_trace
from loadtest.trace.replay import ReplayPlan, Window
from loadtest.trace.replay import plan as replay
from loadtest.runner.locust_run import LocustRun, RemoteWorkers, RunResult
from loadtest.runner.progress import Progress, print_summary
from loadtest.config import parse_duration
from loadtest.scenario import Scenario, ScenarioError, load_scenario

DEFAULT_SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "smoke.toml"
#: ``chatload run``'s exit codes (``--help`` and docs/report-contract.md).
EXIT_PASSED, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INCOMPLETE = range(5)


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
        "  chatload run --master --expect-workers 4 --host URL   # workers on other machines\n"
        "      (and on each: chatload worker --master-host MASTER)\n"
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
    add("--host", action="append", help=HOST_HELP)
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
        help="an SLO, repeatable: 'time_to_first_output.p95 < 2000ms', 'error_rate < 1%%'; "
        "replaces the scenario's [slo] checks; an unknown figure exits 2 before anything runs",
    )
    add(
        "--stop-timeout",
        type=_duration(positive=False),
        help="time turns in flight get to finish at the end, as 30 or 30s (default 30 s)",
    )
    add("--workers", type=_at_least(0), help="Locust worker processes (0: one local process)")
    add(
        "--master",
        action="store_true",
        help="run the workers on other machines: wait for --expect-workers 'chatload worker "
        "--master-host THIS_HOST' to join (they get the scenario, settings and tokens from here), "
        "then run; keep the master port on a private network, as it carries the tokens",
    )
    add("--expect-workers", type=_at_least(1), metavar="N", help="with --master: how many")
    add(
        "--master-bind-host",
        default="*",
        metavar="H",
        help="with --master: the interface workers connect to (default *: every one)",
    )
    add(
        "--master-bind-port",
        type=_at_least(1),
        default=MASTER_PORT,
        metavar="P",
        help=f"with --master: the port workers connect to (default {MASTER_PORT}, Locust's)",
    )
    add(
        "--expect-workers-max-wait",
        type=_duration(positive=True),
        default=600.0,
        metavar="TIME",
        help="with --master: how long to wait for the workers to join (default 10m); then exit 2",
    )
    add("--report-dir", type=Path, help="where to write reports (default reports/<time>-<name>)")
    add(
        "--prometheus",
        metavar="ADDR",
        help="serve live figures on http://ADDR/metrics while the run lasts (e.g. "
        "0.0.0.0:21112, Coder's scaletest default), under Coder's scaletest metric names, "
        "labels and buckets (coderd_scaletest_chat_*, each with run_id = report.json's "
        "run.run_id; phase initial|follow_up on the turn histograms) and chatload_* for the rest "
        "(agents: chatload_tool_time_seconds{tool}, chatload_tool_calls_total{tool}, ...)",
    )
    # Coder's scaletest waits before closing its /metrics (coder/coder cli/exp_scaletest.go
    # scaletestPrometheusFlags: default 15s; cli/exp_scaletest_chat.go waits, then closes).
    add(
        "--prometheus-wait",
        type=_duration(positive=False),
        default=0.0,
        metavar="TIME",
        help="with --prometheus: keep serving the final figures this long after the run "
        "ends, for Prometheus's last scrape (as Coder's --scaletest-prometheus-wait; its "
        "default is 15s, chatload's 0)",
    )
    add(
        "--web",
        nargs="?",
        const=WEB_ADDRESS,
        metavar="ADDR",
        help=f"watch the run in Locust's web UI on http://ADDR (default {WEB_ADDRESS}), with a "
        "chatload tab: live TTFT and kept-output TTFT, events/s, integrity, retries by kind, "
        "reconnects; chatload drives the run, the UI watches it",
    )
    add(
        "--junit",
        type=Path,
        metavar="FILE",
        help="also write the SLO checks as JUnit XML for CI: one test case per SLO, a failed "
        "check carrying its observed value (an incomplete run adds a failed case)",
    )
    add_server_metrics(parser)
    add(
        "--era",
        choices=["auto", "a", "b", "c", "d"],
        help="protocol era of the target (default auto: detected); with the simulator, "
        "the era it speaks (a, b or d; default d, as Coder v2.38+)",
    )
    add("--setup", type=Path, help="a file written by 'chatload setup' (tokens, target)")
    add_trace_flags(parser)
    add("--quiet", action="store_true", help="no live progress lines")


def add_trace_flags(parser: argparse.ArgumentParser) -> None:
    """``--trace`` and what shapes its replay (``run``, and ``capacity`` without --speedup)."""
    add = parser.add_argument
    add(
        "--trace",
        type=Path,
        metavar="FILE",
        help="replay a trace (chatload trace export/synth) instead of the scenario's load: each "
        "user's chat starts at its recorded offset (open loop), each turn its recorded think "
        "time after the last ended, asking the mock LLM for the recorded shape; the run ends "
        "with the trace's last turn (or at -t)",
    )
    add(
        "--speedup",
        type=_positive,
        default=1.0,
        metavar="X",
        help="with --trace: X times as fast (starts and think times / X; 1)",
    )
    add(
        "--window",
        metavar="START:END",
        help="with --trace: only the chats that start in [START, END) seconds of the trace",
    )
    add("--loop", action="store_true", help="with --trace: start over at its end until -t")


def add_server_metrics(parser: argparse.ArgumentParser) -> None:
    """``--server-metrics``, shared with ``chatload capacity``."""
    parser.add_argument(
        "--server-metrics",
        action="append",
        metavar="URL",
        help="scrape the deployment's Prometheus endpoint (e.g. http://coder:2112/metrics; "
        "repeat it, or separate URLs with commas, for each replica's) at the start and end of "
        "the run and put the deltas in report.json's server_metrics: chatd stage durations, "
        "the server's TTFT beside the client's, chatd's tool_call stage beside the client's "
        "tool_time, retries, agents, pubsub. 'sim': the embedded "
        "simulator's /metrics. A failed scrape is a warning, never a lost report",
    )


def server_metrics(
    args: argparse.Namespace, command: str, embedded: TargetInfo | None
) -> ServerMetrics | None:
    """The scraper ``--server-metrics`` asks for (``embedded``: the simulator started for the
    run, which ``sim`` names), or None."""
    urls = endpoints(getattr(args, "server_metrics", None), embedded.url if embedded else None)
    return ServerMetrics(urls, command=command) if urls else None


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
    if getattr(args, "master", False):
        load["workers"] = args.expect_workers
    chat = {"turns": args.turns} if args.turns is not None else {}
    target: dict[str, Any] = {}
    sim: dict[str, Any] = {}
    if args.era:
        target["era"] = args.era
        if args.era != "auto":
            sim["era"] = args.era
    return {"load": load, "chat": chat, "target": target, "sim": sim}


#: A replay's run time when -t does not cap it: it ends with the trace's last turn.
REPLAY_RUN_TIME_S = 10 * 365 * 86400.0
#: Against the embedded simulator a replay's chats log in as up to this many accounts.
REPLAY_ACCOUNTS = 1000


class UsageError(Exception):
    """Bad flags or configuration: exit 2."""


HOST_HELP = (
    "deployment URL (or CODER_URL); absent: the embedded simulator. Repeat it (or separate "
    "URLs with commas) to name the replicas of one deployment: drivers are spread over them, "
    "watchers and watch sockets go to another replica than their chat's driver, and a "
    "dropped stream reconnects to the next replica"
)


def plan(args: argparse.Namespace) -> tuple[Scenario, list[Slo], str | None, list[str]]:
    """Everything checked before a request is sent: a mistake here exits 2, never 3."""
    _check_master_flags(args)
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
    flag_host = ",".join(args.host) if args.host else None
    host = flag_host or os.environ.get("CODER_URL") or scenario.target.host
    tokens = [args.token or os.environ.get("CODER_SESSION_TOKEN") or ""]
    if args.setup is not None:
        from loadtest.deploy.setup_file import read_setup_file

        try:
            setup = read_setup_file(args.setup)
        except (OSError, ValueError) as exc:
            raise UsageError(f"{args.setup}: {exc}") from None
        host = flag_host or setup.url
        tokens = setup.tokens
    for flag, address, server in (
        ("--prometheus", getattr(args, "prometheus", None), MetricsServer),
        ("--web", getattr(args, "web", None), WebUi),
    ):
        if not address:
            continue
        try:
            server(address).check()
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        except OSError as exc:
            raise UsageError(f"{flag} {address}: cannot listen there: {exc.strerror}") from None
    try:
        scraped = endpoints(getattr(args, "server_metrics", None), None if host else "http://sim")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for url in scraped:
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise UsageError(
                f"--server-metrics {redacted(url)!r} is not a URL with a scheme, e.g. "
                "http://coder.internal:2112/metrics (or 'sim' for the embedded simulator)"
            )
    if host:
        for replica in split_hosts(host):
            _check_host(replica)
        if not all(tokens):
            raise UsageError(
                "no session token for " + host + ": pass --token or set CODER_SESSION_TOKEN "
                "(or prepare users with 'chatload setup' and pass --setup)"
            )
    return scenario, slos, host, tokens


def _check_master_flags(args: argparse.Namespace) -> None:
    master, expect = getattr(args, "master", False), getattr(args, "expect_workers", None)
    if master and expect is None:
        raise UsageError("--master needs --expect-workers N: how many workers will join")
    if expect is not None and not master:
        raise UsageError("--expect-workers is for --master (workers on other machines)")
    if master and args.workers:
        raise UsageError(
            "--workers starts workers on this machine, --master waits for them elsewhere: "
            "choose one (or start 'chatload worker' here too)"
        )


def remote_workers(args: argparse.Namespace) -> RemoteWorkers | None:
    """``--master``'s workers, or None when the workers (if any) start here."""
    if not getattr(args, "master", False):
        return None
    return RemoteWorkers(
        expect=args.expect_workers,
        bind_host=args.master_bind_host,
        bind_port=args.master_bind_port,
        max_wait_s=args.expect_workers_max_wait,
    )


def _check_host(host: str) -> None:
    parsed = urlsplit(host)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UsageError(
            f"--host {host!r} is not a URL with a scheme: write it as Coder's CLI takes it, "
            "e.g. https://coder.example.com or http://127.0.0.1:3000"
        )


def replay_plan(args: argparse.Namespace) -> ReplayPlan | None:
    """The trace ``--trace`` names, as a replay plan; a bad trace or window is a UsageError
    naming the line (nothing runs)."""
    path: Path | None = getattr(args, "trace", None)
    if path is None:
        for flag in ("window", "loop"):
            if getattr(args, flag, None):
                raise UsageError(f"--{flag} shapes a --trace replay: give --trace FILE")
        return None
    try:
        window = Window.parse(args.window) if args.window else Window()
        trace = read_trace(path)
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    plan = replay(trace, str(path), args.speedup, window, args.loop)
    if not plan.chats:
        raise UsageError(f"{path}: no user's chat starts in the window; nothing to replay")
    return plan


def main(args: argparse.Namespace) -> int:
    try:
        replaying = replay_plan(args)
        if replaying is not None and args.run_time is None:
            # A replay ends with the trace's last turn: no run time caps it unless -t says.
            args.run_time = REPLAY_RUN_TIME_S
        scenario, slos, host, tokens = plan(args)
    except UsageError as exc:
        print(f"chatload run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return against_target(
        "run",
        scenario,
        host,
        tokens,
        lambda target, tokens: _execute(
            scenario,
            slos,
            target,
            tokens,
            args,
            server_metrics(args, "run", None if host else target),
            replaying,
        ),
        users=min(len(replaying.chats), REPLAY_ACCOUNTS) if replaying else None,
    )


def against_target(
    command: str,
    scenario: Scenario,
    host: str | None,
    tokens: list[str],
    body: Callable[[TargetInfo, list[str]], int],
    users: int | None = None,
) -> int:
    """``body`` against ``host``, or against the embedded simulator (started for it and
    stopped after) when there is none, once the preflight has found the target usable.
    The simulator's users log in as ``[sim] accounts`` says, for ``users`` simulated users
    at most (default: the scenario's)."""
    sim: processes.SimProcess | None = None
    try:
        if not host:
            token = secrets.token_urlsafe(24)
            sim = processes.SimProcess.start(scenario.sim.era, token, scenario.sim.config)
            accounts = scenario.sim.account_count(users or driving_users(scenario))
            host, tokens = sim.url, (sim.accounts(accounts) if accounts > 1 else [token])
        try:
            target = inspect_replicas(split_hosts(host), tokens, scenario.target.era)
        except TargetError as exc:
            print(f"chatload {command}: {exc}", file=sys.stderr)
            return EXIT_UNREACHABLE
        return body(target, tokens)
    except processes.ProcessError as exc:
        print(f"chatload {command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        # Before the load started (while the simulator or the preflight ran): nothing to report.
        print(
            f"chatload {command}: interrupted before the load started; no report", file=sys.stderr
        )
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
    scraper: ServerMetrics | None = None,
    replaying: ReplayPlan | None = None,
) -> int:
    load = scenario.load
    settings = runtime.RunSettings.for_target(
        scenario,
        target,
        turn_slos=per_turn_bounds(slos),
        process_arrival_rate=load.arrival_rate / max(1, load.workers)
        if load.arrival_rate
        else None,
        replay=replaying,
    )
    report_dir = _report_dir(args, scenario)
    report_dir.mkdir(parents=True, exist_ok=True)
    shared = None if replaying else shared_account_warning(scenario, len(set(tokens)))
    if shared is not None:
        print(f"chatload run: warning: {shared}", file=sys.stderr)
    scraped = scraper.scrape() if scraper is not None else None
    result = LocustRun(
        settings,
        tokens,
        locust_csv=report_dir / "locust",
        progress=Progress(enabled=not args.quiet),
        metrics=MetricsServer(args.prometheus) if args.prometheus else None,
        metrics_wait=args.prometheus_wait,
        remote=remote_workers(args),
        web=WebUi(args.web) if args.web else None,
    ).run()
    info = run_info(scenario, target, result, result.duration_s)
    info.accounts = len(set(tokens))
    info.warnings = [shared] if shared is not None else []
    report = build_report(result.snapshot, info, origin_epoch_s=result.started_at.timestamp())
    if replaying is not None:
        report.trace = replay_section(
            result.snapshot, replaying.file, replaying.speedup, replaying.loop, len(replaying.chats)
        )
    if scraper is not None and scraped is not None:
        report.server_metrics = build_server_metrics(
            scraper.shown,
            scraped,
            scraper.scrape(),
            report.latency_ms["time_to_first_output"],
            report.latency_ms.get("tool_time"),
        )
        scraper.close()
    report.slo = evaluate(report.figure, slos)
    files = _write(report, report_dir, scenario, result.environment)
    if args.junit is not None:
        write_atomic(args.junit, render_junit(report).encode())
        files.append(args.junit)
    print_summary(report, files)
    if report.server_metrics is not None:
        print(server_metrics_line(report.server_metrics))
    return exit_code(report, slos)


def run_info(
    scenario: Scenario, target: TargetInfo, result: RunResult, duration_s: float
) -> RunInfo:
    """What a report says of its run; ``duration_s`` is the time its figures cover."""
    load = scenario.load
    return RunInfo(
        started_at=result.started_at,
        ended_at=result.ended_at,
        duration_s=duration_s,
        complete=not result.incomplete_reasons,
        incomplete_reasons=result.incomplete_reasons,
        worker_nodes=result.worker_nodes,
        run_id=result.run_id or None,
        scenario=scenario.name,
        workers=load.workers,
        load=Load(mode=load.mode, users=load.users, arrival_rate=load.arrival_rate),
        target=Target(
            url=target.url,
            era=_era(target, result.snapshot),
            server_version=target.server_version,
            replicas=target.replicas,
        ),
    )


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


def _write(report: Report, report_dir: Path, scenario: Scenario, env: Environment) -> list[Path]:
    """chatload's files, then Locust's own beside them."""
    files = write_report_files(
        report, report_dir, html=scenario.report.html, csv=scenario.report.csv
    )
    write_locust_csvs(env, report_dir / "locust")
    if scenario.report.html:
        write_locust_html(env, report_dir / "locust.html")
        files.append(report_dir / "locust.html")
    return files
