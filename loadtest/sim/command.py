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
    return run(
        Era(args.era),
        config,
        host=args.host,
        port=args.port,
        token=args.token or os.environ.get(TOKEN_ENV) or None,
        default_model=not args.no_default_model,
        ws_ping_interval=args.ws_ping_interval,
        log_level=args.log_level,
    )
