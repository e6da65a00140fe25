"""``chatload trace export|synth|show``: make a trace of real usage, make one up, look at one.

Exit codes: 0 done; 2 bad usage, a bad scenario or a bad trace (the message names the flag,
the key or the line; nothing is written); 3 the source could not be used (the database or
the deployment unreachable, the token refused, not Coder's schema).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from loadtest.config import ConfigError, parse_duration
from loadtest.trace.build import Built, ExportError
from loadtest.trace.files import TraceError, read_trace, write_trace
from loadtest.trace.model import TraceLines
from loadtest.trace.progress import ProgressBar

DEFAULT_OUT = Path("trace.jsonl.gz")
#: Coder's own variable for its database (``coder server --postgres-url``).
DATABASE_ENV = "CODER_PG_CONNECTION_URL"


class UsageError(Exception):
    """A flag that cannot be used; exit 2."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "A trace is JSON Lines (gzip when the name ends in .gz): a header, then one chat a "
        "line with its start, parent, workspace slot and turns (think time, prompt size, "
        "steps, tool calls by name, sub-agents, output tokens, duration). It holds no text, "
        "titles, names or Coder ids. Exit 2 on bad usage or a bad trace, 3 when the source "
        "cannot be used."
    )
    sub = parser.add_subparsers(dest="trace_command", metavar="SUBCOMMAND", required=True)

    export = sub.add_parser(
        "export",
        help="a trace of real usage, from Coder's PostgreSQL or its API",
        description="Export what happened in a Coder deployment's chats, without what was "
        "said: from its PostgreSQL (--database-url, every user's chats, read-only) or its "
        "API (--host and --token, the token owner's chats, paced under the rate limit).",
    )
    source = export.add_mutually_exclusive_group()
    source.add_argument(
        "--database-url",
        metavar="URL",
        help=f"Coder's PostgreSQL (default: ${DATABASE_ENV}, as coder server reads it); "
        "one read-only query; prefer the variable: a password in a flag shows in ps",
    )
    source.add_argument("--host", metavar="URL", help="the deployment (default: $CODER_URL)")
    export.add_argument(
        "--token", metavar="T", help="a session token (default: $CODER_SESSION_TOKEN)"
    )
    export.add_argument(
        "--since",
        metavar="T",
        help="chats started at or after T: 2026-12-08, 2026-12-08T09:00, RFC 3339 (no zone: "
        "UTC), or a duration ago (24h)",
    )
    export.add_argument("--until", metavar="T", help="chats started before T (as --since)")
    export.add_argument(
        "--out", metavar="FILE", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT}"
    )
    export.add_argument(
        "--salt",
        metavar="TEXT",
        help="key of the chat id hash: the same salt names the same chat alike in two "
        "exports (default: random, so a trace cannot be matched to Coder's ids)",
    )
    export.add_argument(
        "--era", choices=["auto", "a", "b", "c", "d"], default="auto", help="API era (--host)"
    )
    export.add_argument(
        "--rps",
        metavar="N",
        type=float,
        default=None,
        help="API requests a second at most (--host; default 8: under Coder's 512 a minute "
        "per path); a 429 waits as the server says",
    )

    synth = sub.add_parser(
        "synth",
        help="a trace from a scenario's distributions, seeded and repeatable",
        description="Make a trace from a scenario: arrivals from --chats over --duration (or "
        "the scenario's load), turns from [chat], each answer's shape from [sim] config. The "
        "same seed gives the same file.",
    )
    synth.add_argument(
        "--scenario", metavar="FILE", type=Path, help="a scenario (default: the built-in one)"
    )
    synth.add_argument(
        "--chats", metavar="N", type=int, help="chats (default: the scenario's load)"
    )
    synth.add_argument(
        "--duration", metavar="D", help="span: 600, 10m, 1h (default: the scenario's run_time)"
    )
    synth.add_argument("--seed", metavar="N", type=int, default=1, help="default: 1")
    synth.add_argument(
        "--out", metavar="FILE", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT}"
    )

    show = sub.add_parser(
        "show",
        help="what is in a trace: chats, turns, arrivals per minute, the distributions",
        description="Print a trace's chats, turns, arrivals and distributions; --html also "
        "writes them as a page with plots.",
    )
    show.add_argument("file", metavar="FILE", type=Path, help="a trace (.jsonl or .jsonl.gz)")
    show.add_argument("--html", metavar="FILE", type=Path, help="write an HTML page here")


def main(args: argparse.Namespace) -> int:
    command = args.trace_command
    try:
        if command == "export":
            return _export(args)
        if command == "synth":
            return _synth(args)
        return _show(args)
    except (UsageError, ConfigError, TraceError) as exc:
        print(f"chatload trace {command}: {exc}", file=sys.stderr)
        return 2


def parse_moment(flag: str, text: str | None, now: datetime | None = None) -> datetime | None:
    """A ``--since``/``--until`` value as an aware datetime (a zone-less one is UTC)."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        try:
            ago = parse_duration(text)
        except ValueError:
            raise UsageError(
                f"{flag}: {text!r} is neither a time (2026-12-08, 2026-12-08T09:00:00Z) nor a "
                "duration ago (24h)"
            ) from None
        return (now or datetime.now(UTC)).replace(microsecond=0) - timedelta(seconds=ago)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _write(trace: TraceLines, out: Path) -> None:
    try:
        write_trace(out, trace)
    except OSError as exc:
        raise UsageError(f"{out}: cannot write it ({exc.strerror})") from None


def _summary(out: Path, trace: TraceLines) -> str:
    subagents = sum(1 for chat in trace.chats if chat.parent is not None)
    turns = sum(chat.turn_count for chat in trace.chats)
    start = trace.header.started_at.isoformat().replace("+00:00", "Z")
    return (
        f"wrote {out}: {len(trace.chats):,} chats ({subagents:,} sub-agents), {turns:,} turns, "
        f"from {start} for {trace.header.duration_s:g} s"
    )


def _export(args: argparse.Namespace) -> int:
    since = parse_moment("--since", args.since)
    until = parse_moment("--until", args.until)
    if since and until and until <= since:
        raise UsageError("--until must be after --since")
    salt = args.salt.encode() if args.salt else secrets.token_bytes(32)
    database = args.database_url
    host = args.host
    if database is None and host is None:
        api_flags = args.token is not None or args.rps is not None or args.era != "auto"
        database = None if api_flags else os.environ.get(DATABASE_ENV) or None
        host = None if database else os.environ.get("CODER_URL") or None
    if database is None and host is None:
        raise UsageError(
            f"say where from: --database-url (or ${DATABASE_ENV}) or --host and --token "
            "(or $CODER_URL)"
        )
    if database is not None and (args.token or args.rps is not None or args.era != "auto"):
        raise UsageError("--token, --rps and --era are for --host (the API), not --database-url")
    progress = ProgressBar("exporting")
    try:
        if database is not None:
            from loadtest.trace.export_db import export_database

            built = export_database(
                database, since=since, until=until, salt=salt, progress=progress
            )
        else:
            assert host is not None
            built = _export_api(args, host, since, until, salt, progress)
    except ExportError as exc:
        print(f"chatload trace export: {exc}", file=sys.stderr)
        return 3 if exc.unreachable else 2
    _write(built.trace, args.out)
    _report(built)
    print(_summary(args.out, built.trace))
    return 0


def _export_api(
    args: argparse.Namespace,
    host: str,
    since: datetime | None,
    until: datetime | None,
    salt: bytes,
    progress: ProgressBar,
) -> Built:
    from loadtest.client.preflight import TargetError, inspect_target
    from loadtest.trace.export_api import DEFAULT_RPS, Api, export_api

    token = args.token or os.environ.get("CODER_SESSION_TOKEN") or ""
    if not host.startswith(("http://", "https://")):
        raise UsageError(f"--host: {host!r} needs a scheme (https://...)")
    if not token:
        raise UsageError("no session token: pass --token or set CODER_SESSION_TOKEN")
    rps = DEFAULT_RPS if args.rps is None else args.rps
    if rps <= 0:
        raise UsageError("--rps must be more than 0")
    try:
        target = inspect_target(host, [token], args.era)
    except TargetError as exc:
        raise ExportError(str(exc)) from None
    api = Api(target.url, token, rps=rps, on_wait=progress.note)
    try:
        return export_api(api, target.era, since=since, until=until, salt=salt, progress=progress)
    finally:
        if api.limited:
            print(
                f"chatload trace export: rate limited {api.limited} times, waited "
                f"{api.waited_s:.0f} s in all",
                file=sys.stderr,
            )
        api.close()


def _report(built: Built) -> None:
    if built.without_turns:
        print(
            f"chatload trace export: left out {built.without_turns} chats with no user message",
            file=sys.stderr,
        )
    if built.orphans:
        print(
            f"chatload trace export: left out {built.orphans} sub-agent chats whose parent "
            "started outside the window",
            file=sys.stderr,
        )
    if not built.trace.chats:
        print("chatload trace export: no chats started in the window", file=sys.stderr)


def _synth(args: argparse.Namespace) -> int:
    from loadtest.scenario import load_scenario
    from loadtest.trace.synth import synth

    scenario = load_scenario(args.scenario)
    try:
        duration = None if args.duration is None else parse_duration(args.duration)
    except ValueError as exc:
        raise UsageError(f"--duration: {exc}") from None
    trace = synth(scenario, seed=args.seed, chats=args.chats, duration=duration)
    _write(trace, args.out)
    print(_summary(args.out, trace))
    return 0


def _show(args: argparse.Namespace) -> int:
    from loadtest.report.atomic import write_atomic
    from loadtest.trace.show import describe, render_html, render_text

    trace = read_trace(args.file)
    description = describe(trace)
    sys.stdout.write(render_text(description))
    if args.html is not None:
        try:
            write_atomic(args.html, render_html(description, args.file.name).encode())
        except OSError as exc:
            raise UsageError(f"{args.html}: cannot write it ({exc.strerror})") from None
        print(args.html)
    return 0
