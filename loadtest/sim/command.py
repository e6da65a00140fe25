"""``chatload sim``: flags, config file and environment -> a running simulator."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from loadtest.config import ConfigError, add_flags, flag_overrides, load_model
from loadtest.protocol.eras import Era
from loadtest.sim.config import SimConfig
from loadtest.sim.faults import REPLICA_FAULTS

TOKEN_ENV = "CHATLOAD_SIM_TOKEN"

EPILOG = """\
The token of the pre-made owner comes from --token or $CHATLOAD_SIM_TOKEN; without one the
deployment is fresh and is bootstrapped through /api/v2/users/first. Tokens are never logged.

--config FILE is TOML with the same settings under their config names (flags win), e.g.:
  parts_per_turn = 40
  time_scale = 0.01
  ttft_ms = { dist = "lognormal", p50 = 300, sigma = 0.5 }
  part_gap_ms = { dist = "uniform", min = 5, max = 40 }
  [faults]
  drop_rate = 0.1
Every setting can also be changed while serving: PATCH /__sim/config (JSON merge).

Admin (unauthenticated): GET /__sim/counts, POST /__sim/reset, GET|PATCH /__sim/config,
websockets /__sim/firehose?frames=N&batch=B[&chars=C] and /__sim/turnhose?turns=N.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    server = parser.add_argument_group("server")
    server.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    server.add_argument("--port", type=int, default=3000, help="port to bind; 0 picks a free one")
    server.add_argument(
        "--era",
        choices=[era.value for era in Era],
        default=Era.D.value,
        help="protocol era: d (/api/v2, ChatError, episodes: Coder v2.38+, the default), "
        "c (Coder v2.37 dual mount: chats under /api/v2, providers under /api/experimental, "
        "org models), a (/api/experimental, envelopes: the seed's) or b (bare arrays)",
    )
    server.add_argument(
        "--token", help=f"session token of the pre-made owner (default ${TOKEN_ENV})"
    )
    server.add_argument("--config", type=Path, metavar="FILE", help="TOML settings file")
    server.add_argument(
        "--no-default-model",
        action="store_true",
        help="start without the seeded provider and default model config",
    )
    server.add_argument(
        "--no-agents-experiment",
        action="store_true",
        help="eras a-c: leave the 'agents' experiment off (chats routes answer 403)",
    )
    server.add_argument(
        "--ws-ping-interval",
        type=float,
        default=15.0,
        metavar="S",
        help="websocket ping interval in seconds, 0 disables; a pong missing for 15 s closes (15)",
    )
    server.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="stderr log level (warning)",
    )
    cluster = parser.add_argument_group(
        "replicas: a simulated Coder cluster (Debian's postgresql, and nats-server for nats)"
    )
    cluster.add_argument(
        "--replicas",
        type=int,
        default=0,
        metavar="N",
        help="run N replica processes on --port, --port+1, ... sharing chats and messages in "
        "PostgreSQL and notifying each other over --pubsub, as Coder's replicas do (0: one "
        "plain simulator)",
    )
    cluster.add_argument(
        "--pubsub",
        choices=["nats", "postgres"],
        default="nats",
        help="nats (Coder's default since September 2026) or postgres (LISTEN/NOTIFY, the "
        "fallback) (nats)",
    )
    cluster.add_argument(
        "--database-url", help="use this PostgreSQL instead of starting a private one"
    )
    cluster.add_argument("--pubsub-url", help="use this NATS (or PostgreSQL) for the pubsub")
    cluster.add_argument(
        "--lease",
        type=float,
        default=3.0,
        metavar="S",
        help="seconds without a heartbeat after which a replica's running chats are taken "
        "over by another (Coder: 5 minutes) (3)",
    )
    cluster.add_argument(
        "--legacy-replicas",
        type=int,
        default=0,
        metavar="K",
        help="the last K replicas are of the previous version: they publish and read only "
        "the legacy error string (a rolling deploy in progress) (0)",
    )
    for fault in REPLICA_FAULTS:
        cluster.add_argument(
            fault.flag, type=float, default=0.0, metavar=fault.metavar, help=fault.help + " (0)"
        )
    add_flags(parser.add_argument_group("generation and faults (see --config)"), SimConfig)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides = flag_overrides(args)
    if args.no_agents_experiment:
        overrides["agents_experiment"] = False
    return overrides


def main(args: argparse.Namespace) -> int:
    from loadtest.sim.server import run

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr, format="%(message)s")
    try:
        config = load_model(SimConfig, args.config, _overrides(args))
    except ConfigError as exc:
        print(f"chatload sim: invalid configuration: {exc}", file=sys.stderr)
        return 2
    if args.replicas:
        problem = _cluster_problem(args)
        if problem:
            print(f"chatload sim: {problem}", file=sys.stderr)
            return 2
        from loadtest.sim.cluster.processes import run_cluster

        return run_cluster(args, sys.argv[2:])
    from loadtest.sim.cluster.config import REPLICA_ENV, ReplicaSettings

    raw = os.environ.get(REPLICA_ENV)
    replica = ReplicaSettings.model_validate_json(raw) if raw else None
    return run(
        Era(args.era),
        config,
        host=args.host,
        port=args.port,
        token=args.token or os.environ.get(TOKEN_ENV) or None,
        default_model=not args.no_default_model,
        ws_ping_interval=args.ws_ping_interval,
        log_level=args.log_level,
        replica=replica,
    )


def _cluster_problem(args: argparse.Namespace) -> str | None:
    if args.replicas < 1:
        return f"--replicas {args.replicas}: give at least 1"
    if args.era != Era.D.value:
        return "--replicas simulates today's Coder: era d only"
    if not 0 <= args.legacy_replicas < args.replicas:
        return f"--legacy-replicas {args.legacy_replicas}: from 0 to {args.replicas - 1}"
    if args.lease <= 0:
        return "--lease must be above 0 seconds"
    return None
