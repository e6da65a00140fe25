"""``chatload run``: flags -> plan (``plan.py``) -> target (``target.py``) -> ``LocustRun`` ->
report -> exit code.

Exit codes (``docs/report-contract.md``): 0 ran and every SLO held; 1 an SLO failed (or, with
no SLO, a turn failed); 2 bad usage or configuration; 3 target unreachable or credentials
refused; 4 ran, but incomplete: an interrupted run, or one that lost a worker, still writes
its report, marked ``complete: false``, whatever its SLOs say.
"""

# Locust patches the standard library with gevent when imported: first, before httpx/ssl.
import locust  # noqa: F401, I001

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from locust.env import Environment

from loadtest.client.preflight import TargetInfo
from loadtest.client.server_metrics import MetricsScraper, endpoints
from loadtest.core.profiles import SHAPES, Storm
from loadtest.core.slo import Slo, evaluate, per_turn_bounds
from loadtest.core.measurement import Measurement
from loadtest.locust import runtime
from loadtest.locust.join import MASTER_PORT
from loadtest.report.files import write_report_files
from loadtest.report.locust_files import write_locust_csvs, write_locust_html
from loadtest.report.atomic import write_atomic
from loadtest.runner.prometheus import MetricsServer
from loadtest.runner.web import DEFAULT_ADDRESS as WEB_ADDRESS
from loadtest.runner.web import WebUi
from loadtest.report.junit import render_junit
from loadtest.report.model import Load, Report, RunInfo, Target
from loadtest.report.build import build_report, replay_section, storm_run
from loadtest.report.server_metrics import build_server_metrics, server_metrics_line
from loadtest.runner.flags import at_least, duration, positive
from loadtest.runner.accounts import shared_account_warning
from loadtest.trace.replay import ReplayPlan
from loadtest.runner.plan import (
    DEFAULT_SCENARIO,
    EXIT_FAILED,
    EXIT_INCOMPLETE,
    EXIT_PASSED,
    EXIT_USAGE,
    HOST_HELP,
    REPLAY_ACCOUNTS,
    REPLAY_RUN_TIME_S,
    UsageError,
    plan,
    remote_workers,
    replay_plan,
)
from loadtest.runner.target import against_target
from loadtest.runner.locust_run import LocustRun, RunResult
from loadtest.runner.progress import RunProgress, print_summary
from loadtest.scenario import Scenario


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
        "  chatload run --shape storm -u 100 --turns 10   # Coder's scaletest chat load\n"
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
    add("-u", "--users", type=at_least(1), help="closed loop: concurrent users (load.users)")
    add("-r", "--spawn-rate", type=positive, help="users started per second (load.spawn_rate)")
    add("--arrival-rate", type=positive, help="open loop: turns started per second, Poisson")
    add(
        "-t",
        "--run-time",
        type=duration(positive=True),
        help="run time: 30, 30s, 2m, 1h30m (load.run_time)",
    )
    add("--turns", type=at_least(1), help="turns per conversation (chat.turns)")
    add(
        "--shape",
        choices=sorted(SHAPES),
        help="closed loop's load shape (load.shape); storm: Coder's 'coder exp scaletest chat' "
        "(every chat created at once behind a barrier, each next turn as its last ends, the "
        "run over when every chat is; -u chats, --turns turns each)",
    )
    add(
        "--turn-start-delay",
        type=duration(positive=False),
        metavar="TIME",
        help="with --shape storm: hold every follow-up until every chat's first turn ended, "
        "then this long, then release them together (load.turn_start_delay; Coder's "
        "--turn-start-delay; default 0: each chat's follow-ups go as soon as it is ready)",
    )
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
        type=duration(positive=False),
        help="time turns in flight get to finish at the end, as 30 or 30s (default 30 s)",
    )
    add("--workers", type=at_least(0), help="Locust worker processes (0: one local process)")
    add(
        "--master",
        action="store_true",
        help="run the workers on other machines: wait for --expect-workers 'chatload worker "
        "--master-host THIS_HOST' to join (they get the scenario, settings and tokens from here), "
        "then run; keep the master port on a private network, as it carries the tokens",
    )
    add("--expect-workers", type=at_least(1), metavar="N", help="with --master: how many")
    add(
        "--master-bind-host",
        default="*",
        metavar="H",
        help="with --master: the interface workers connect to (default *: every one)",
    )
    add(
        "--master-bind-port",
        type=at_least(1),
        default=MASTER_PORT,
        metavar="P",
        help=f"with --master: the port workers connect to (default {MASTER_PORT}, Locust's)",
    )
    add(
        "--expect-workers-max-wait",
        type=duration(positive=True),
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
        type=duration(positive=False),
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
        type=positive,
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
) -> MetricsScraper | None:
    """The scraper ``--server-metrics`` asks for (``embedded``: the simulator started for the
    run, which ``sim`` names), or None."""
    urls = endpoints(getattr(args, "server_metrics", None), embedded.url if embedded else None)
    return MetricsScraper(urls, command=command) if urls else None


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
    scraper: MetricsScraper | None = None,
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
        progress=RunProgress(enabled=not args.quiet),
        metrics=MetricsServer(args.prometheus) if args.prometheus else None,
        metrics_wait=args.prometheus_wait,
        remote=remote_workers(args),
        web=WebUi(args.web) if args.web else None,
    ).run()
    info = run_info(scenario, target, result, result.duration_s)
    info.accounts = len(set(tokens))
    info.workspaces = len(target.workspaces)
    info.warnings = [shared] if shared is not None else []
    report = build_report(result.measurement, info, origin_epoch_s=result.started_at.timestamp())
    if replaying is not None:
        report.trace = replay_section(
            result.measurement,
            replaying.file,
            replaying.speedup,
            replaying.loop,
            len(replaying.chats),
        )
    if isinstance(load.profile, Storm):
        report.storm = storm_run(result.measurement, load.profile, scenario.chat.turns)
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
            era=_era(target, result.measurement),
            server_version=target.server_version,
            replicas=target.replicas,
        ),
    )


def _era(target: TargetInfo, measurement: Measurement) -> str:
    """The era reported: from buildinfo, or for older servers from the frames themselves."""
    if target.era_from_stream and measurement.count("streams_era_b") > measurement.count(
        "streams_era_a"
    ):
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
