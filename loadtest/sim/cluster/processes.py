"""``chatload sim --replicas N``: a simulated Coder cluster, its PostgreSQL and pubsub, as processes.

The supervisor starts (or is given) PostgreSQL and, with ``--pubsub nats``, a NATS server,
each private on 127.0.0.1; creates the shared schema; starts N replica processes on
consecutive ports (``--port P``: P, P+1, ...; 0: free ones), each printing its listening
line; and stops them all, servers last, on SIGINT/SIGTERM. A replica that dies (``POST
/__sim/crash``, or killed) stays dead: the others take its chats over once their lease ends.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
import sys
import time
from types import FrameType

from loadtest.child import spawn
from loadtest.pubsub.bus import redacted
from loadtest.pubsub.servers import NatsServer, PostgresServer, ServerError
from loadtest.sim.cluster.config import REPLICA_ENV, SCHEMA, ReplicaFaults, ReplicaSettings
from loadtest.sim.faults import REPLICA_FAULTS

#: Flags of the supervisor, not passed on to the replicas (with whether they take a value).
CLUSTER_FLAGS = {
    "--replicas": True,
    "--pubsub": True,
    "--database-url": True,
    "--pubsub-url": True,
    "--lease": True,
    "--legacy-replicas": True,
    "--notify-drop-rate": True,
    "--notify-delay-ms": True,
    "--relay-drop-rate": True,
    "--relay-duplicate-rate": True,
    "--port": True,
}
START_TIMEOUT_S = 30.0


def replica_argv(argv: list[str]) -> list[str]:
    """The ``chatload sim`` arguments without the supervisor's own."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in CLUSTER_FLAGS:
            skip = CLUSTER_FLAGS[name] and "=" not in arg
            continue
        out.append(arg)
    return out


def _schema(database_url: str) -> None:
    import psycopg

    with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(SCHEMA)


class _Stop(Exception):
    pass


def run_cluster(args: argparse.Namespace, argv: list[str]) -> int:
    """Serve the cluster until a signal; 0 then, 1 if it could not start."""
    servers: list[PostgresServer | NatsServer] = []
    replicas: list[subprocess.Popen[str]] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stop

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        database_url = args.database_url
        if not database_url:
            postgres = PostgresServer()
            servers.append(postgres)
            database_url = postgres.start()
        pubsub_url = args.pubsub_url
        if not pubsub_url:
            if args.pubsub == "postgres":
                pubsub_url = database_url
            else:
                nats = NatsServer()
                servers.append(nats)
                pubsub_url = nats.start()
        _schema(database_url)
        print(
            f"chatload sim: {args.replicas} replicas, state in PostgreSQL at "
            f"{redacted(database_url)}, pubsub {args.pubsub} at {redacted(pubsub_url)}",
            file=sys.stderr,
            flush=True,
        )
        passed_on = replica_argv(argv)
        for index in range(args.replicas):
            settings = ReplicaSettings(
                index=index,
                count=args.replicas,
                database_url=database_url,
                pubsub_url=pubsub_url,
                lease_s=args.lease,
                legacy=index >= args.replicas - args.legacy_replicas,
                faults=ReplicaFaults(**{f.key: getattr(args, f.key) for f in REPLICA_FAULTS}),
                seed=None if getattr(args, "seed", None) is None else args.seed + index,
            )
            port = args.port + index if args.port else 0
            replicas.append(_start_replica(settings, passed_on, port))
        _watch(replicas)
        return 0
    except _Stop:
        return 0
    except (ServerError, RuntimeError, OSError) as exc:
        print(f"chatload sim: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for process in replicas:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in replicas:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        for server in reversed(servers):
            server.stop()


def _start_replica(settings: ReplicaSettings, argv: list[str], port: int) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "loadtest.cli", "sim", *argv, "--port", str(port)]
    process = spawn(
        command,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, REPLICA_ENV: settings.model_dump_json()},
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT_S)
    line = process.stdout.readline() if ready else ""
    if "listening on" not in line:
        process.kill()
        raise RuntimeError(f"replica {settings.index} did not start (exit {process.wait()})")
    print(line.rstrip(), flush=True)
    return process


def _watch(replicas: list[subprocess.Popen[str]]) -> None:
    """Until a signal: say so when a replica dies (the rest go on)."""
    reported: set[int] = set()
    while True:
        for index, process in enumerate(replicas):
            if index not in reported and process.poll() is not None:
                reported.add(index)
                print(
                    f"chatload sim: replica {index} exited ({process.returncode}); "
                    "the others take its chats over when its lease ends",
                    file=sys.stderr,
                    flush=True,
                )
        time.sleep(0.2)
