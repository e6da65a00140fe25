"""``chatload sim``: flags, config file and environment -> a running simulator."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic

from loadtest.protocol.eras import Era
from loadtest.protocol.models import ErrorKind
from loadtest.sim.config import Dist, load

TOKEN_ENV = "CHATLOAD_SIM_TOKEN"

#: flag -> (config key, parse, metavar, help). Every tunable knob, documented once.
TUNING: dict[str, tuple[str, Callable[[str], Any], str, str]] = {
    "--acquire": (
        "acquire_ms",
        Dist.parse,
        "SPEC",
        "from a post to the daemon taking the chat up and calling the LLM, in ms, as --ttft "
        "(0; Coder's daemons poll every 1000)",
    ),
    "--ttft": (
        "ttft_ms",
        Dist.parse,
        "SPEC",
        "time to first output after 'running', in ms: N (constant), constant:N, "
        "uniform:MIN,MAX or lognormal:P50[,SIGMA] (default lognormal:300,0.5)",
    ),
    "--parts-per-turn": ("parts_per_turn", int, "N", "text deltas per generation step (20)"),
    "--part-gap": (
        "part_gap_ms",
        Dist.parse,
        "SPEC",
        "gap before each delta in ms, as --ttft (20)",
    ),
    "--part-chars": ("part_chars", int, "N", "characters of text per delta (24)"),
    "--reasoning-parts": ("reasoning_parts", int, "N", "reasoning deltas before the text (0)"),
    "--tool-steps": (
        "tool_steps",
        int,
        "N",
        "tool round trips per turn: tool-call part, assistant and tool messages, more text (0)",
    ),
    "--output-tokens": (
        "output_tokens",
        int,
        "N",
        "usage.output_tokens of each assistant message (default: characters / 4)",
    ),
    "--time-scale": (
        "time_scale",
        float,
        "X",
        "multiply the retry backoff slept (min(2^(n-1), 60) s) by X; delay_ms stays Coder's (1)",
    ),
    "--error-rate": ("error_rate", float, "P", "probability a turn hits provider errors (0)"),
    "--error-kind": (
        "error_kind",
        str,
        "KIND",
        f"ChatError kind of those errors (overloaded); one of: {', '.join(ErrorKind)}",
    ),
    "--error-retries": (
        "error_retries",
        int,
        "N",
        "failed attempts before the provider recovers; 25 fails all attempts -> error (2)",
    ),
    "--rate-limit": (
        "rate_limit_per_minute",
        int,
        "N",
        "per-user API requests per minute, 429 beyond; -1 disables (512)",
    ),
    "--json-ping-interval": (
        "json_ping_interval_s",
        float,
        "S",
        'era a: seconds between {"type":"ping"} frames on a stream; 0 disables (15)',
    ),
    "--drop-rate": ("faults.drop_rate", float, "P", "fault: cut the streams mid-turn (1006)"),
    "--stall-rate": ("faults.stall_rate", float, "P", "fault: stop writing mid-turn"),
    "--stall-ms": ("faults.stall_ms", int, "MS", "fault: how long a stall lasts (2000)"),
    "--malformed-rate": ("faults.malformed_rate", float, "P", "fault: send a non-JSON frame"),
    "--close-rate": ("faults.close_rate", float, "P", "fault: close the streams mid-turn"),
    "--close-code": ("faults.close_code", int, "CODE", "fault: the code of that close (1011)"),
    "--stream-error-rate": (
        "faults.stream_error_rate",
        float,
        "P",
        "fault: fail a stream on connect (era a: error frame; later: HTTP 500)",
    ),
    "--seed": ("seed", int, "N", "seed of the generator's random choices"),
    "--llm-url": (
        "llm_url",
        str,
        "URL",
        "call an OpenAI-compatible LLM at URL (POST {URL}/chat/completions, streaming) for "
        "each turn; an API-configured provider's base_url wins over URL",
    ),
}

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
        choices=[Era.A.value, Era.B.value, Era.D.value],
        default=Era.A.value,
        help="protocol era: a (/api/experimental, envelopes), b (bare arrays), "
        "d (/api/v2, ChatError, no pending) (a)",
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
        help="eras a/b: leave the 'agents' experiment off (chats routes answer 403)",
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
    tuning = parser.add_argument_group("generation and faults (see --config)")
    for flag, (_, parse, metavar, text) in TUNING.items():
        tuning.add_argument(flag, type=parse, metavar=metavar, help=text, default=None)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for flag, (key, *_) in TUNING.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is None:
            continue
        if isinstance(value, Dist):
            value = value.model_dump()
        section, _, name = key.rpartition(".")
        (overrides.setdefault(section, {}) if section else overrides)[name] = value
    if args.no_agents_experiment:
        overrides["agents_experiment"] = False
    return overrides


def main(args: argparse.Namespace) -> int:
    from loadtest.sim.server import run

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr, format="%(message)s")
    try:
        config = load(args.config, _overrides(args))
    except (OSError, ValueError, pydantic.ValidationError) as exc:
        print(f"chatload sim: invalid configuration: {exc}", file=sys.stderr)
        return 2
    run(
        Era(args.era),
        config,
        host=args.host,
        port=args.port,
        token=args.token or os.environ.get(TOKEN_ENV) or None,
        default_model=not args.no_default_model,
        ws_ping_interval=args.ws_ping_interval,
        log_level=args.log_level,
    )
    return 0
