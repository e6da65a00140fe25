"""Active chats per worker process: the most one worker drives on its own core.

The simulator runs pinned to one CPU, one worker process (gevent, Locust loaded, as a Locust
worker) to the other. The worker steps up its number of active chats; each chat is its own
user with a stream socket and a ``/chats/watch`` socket, and posts a turn every 30-60 s that
the simulator streams one event per frame. Each step reports the worker's CPU %, its loop lag
p99 and its memory per chat; the answer is the largest step under 80 % CPU and 10 ms lag.
Stepping stops at the first step over either line, at the time budget, or where the file
descriptor limit (raised soft to hard first) leaves no room for the next step.
"""

from __future__ import annotations

import json
import resource
import secrets
import subprocess
import sys
import time
from typing import IO

from loadtest.bench.client import organization_of, pinned_to, two_cpus
from loadtest.bench.core import Row
from loadtest.runner.processes import SimProcess

STEPS = (250, 500, 1000, 2000, 4000, 6000, 8000, 10_000)
CPU_LIMIT_PCT = 80.0
LAG_LIMIT_MS = 10.0
#: Descriptors a chat takes in each process (stream, watch) and a margin for the rest.
FDS_PER_CHAT, FD_MARGIN = 2, 200


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard one; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def run_scale_bench(
    seconds: float = 1.0, steps: tuple[int, ...] = STEPS, budget_s: float | None = None
) -> list[Row]:
    """Rows per step and the verdict; the budget (default 100 s x ``seconds``) bounds it."""
    budget = budget_s if budget_s is not None else 100.0 * seconds
    window = max(1.0, 5.0 * seconds)
    deadline = time.monotonic() + budget
    fds = raise_fd_limit()
    fd_room = (fds - FD_MARGIN) // FDS_PER_CHAT
    worker_cpu, sim_cpu = two_cpus()
    token = secrets.token_urlsafe(16)
    pinned_to(sim_cpu)()
    sim = SimProcess.start("b", token, {"rate_limit_per_minute": -1}, quiet=True)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadtest.bench.scale_worker",
            sim.url,
            token,
            organization_of(sim.url, token),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=pinned_to(worker_cpu),
    )
    rows: list[Row] = []
    best, stop, last_rate = 0, "", 0.0
    try:
        stdin: IO[str] | None = worker.stdin
        stdout: IO[str] | None = worker.stdout
        assert stdin is not None and stdout is not None
        done = 0
        for n in steps:
            if n > fd_room:
                stop = (
                    f"the file descriptor limit ({fds:,}, hard) leaves room for "
                    f"{fd_room:,} chats: this machine's limit stops it"
                )
                break
            left = deadline - time.monotonic()
            if last_rate and (n - done) / last_rate + window + 3 > left:
                stop = f"the time budget ({budget:.0f} s, --seconds) ends before {n:,} chats"
                break
            stdin.write(f"{n} {window} {max(1.0, left - window - 5)}\n")
            stdin.flush()
            line = stdout.readline()
            if not line:
                raise RuntimeError("the scale worker died")
            step = json.loads(line)
            last_rate = (step["chats"] - done) / max(step["setup_s"], 0.001)
            done = step["chats"]
            label = f"{done:>6,} active chats:"
            rows += [
                (f"{label} worker CPU", step["cpu_pct"], "%"),
                (f"{label} loop lag p99", step["lag_p99_ms"], "ms"),
                (f"{label} memory", step["kb_per_chat"], "KB/chat"),
                (f"{label} frames read", step["frames_per_s"], "frames/s"),
                (f"{label} turns posted", step["posts_per_s"], "turns/s"),
            ]
            if step["errors"]:
                rows.append((f"{label} chats that failed to start", step["errors"], "chats"))
            if step["cpu_pct"] >= CPU_LIMIT_PCT or step["lag_p99_ms"] >= LAG_LIMIT_MS:
                stop = (
                    f"at {done:,} chats the worker's CPU ({step['cpu_pct']:.0f} %) or loop lag "
                    f"p99 ({step['lag_p99_ms']:.1f} ms) is over its line"
                )
                break
            best = done
            if done < n:
                stop = (
                    f"the time budget ({budget:.0f} s, --seconds) ended while starting chats, "
                    f"at {done:,} of {n:,}"
                )
                break
        else:
            stop = f"every step held, up to {best:,} chats"
    finally:
        if worker.stdin:
            worker.stdin.close()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
        sim.stop()
    rows.append(("most active chats per worker (CPU < 80 %, lag p99 < 10 ms)", best, "chats"))
    print(f"  (stepping stopped: {stop})")
    return rows
