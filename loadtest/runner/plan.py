"""What ``chatload run`` (and ``capacity``) check before a request is sent: flags and the
scenario file -> scenario, SLOs, host, tokens, a trace's replay plan. A mistake here is exit 2
(``UsageError``), never 3.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadtest.client.preflight import split_hosts
from loadtest.client.server_metrics import endpoints, redacted
from loadtest.core.slo import Slo, SloError, parse_slo
from loadtest.runner.locust_run import RemoteWorkers
from loadtest.runner.prometheus import MetricsServer
from loadtest.runner.web import WebUi
from loadtest.scenario import Scenario, ScenarioError, load_scenario
from loadtest.trace.files import read_trace
from loadtest.trace.replay import ReplayPlan, Window
from loadtest.trace.replay import plan as replay

DEFAULT_SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "smoke.toml"
#: ``chatload run``'s exit codes (``--help`` and docs/report-contract.md).
EXIT_PASSED, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INCOMPLETE = range(5)


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    load: dict[str, Any] = {}
    if args.users is not None:
        load.update(users=args.users, mode="closed")
    if args.spawn_rate is not None:
        load["spawn_rate"] = args.spawn_rate
    if getattr(args, "shape", None) is not None:
        load.update(shape=args.shape, mode="closed")
    if getattr(args, "turn_start_delay", None) is not None:
        load["turn_start_delay"] = args.turn_start_delay
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
    if getattr(args, "shape", None) is not None and args.arrival_rate is not None:
        raise UsageError("--shape sets the closed loop's shape; --arrival-rate runs the open loop")
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
