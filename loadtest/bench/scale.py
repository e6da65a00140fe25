"""Active chats per worker process: the most one worker drives on its own core.

One worker process (gevent, Locust loaded, as a Locust worker) runs pinned to one CPU; the
simulator runs on the others (one CPU on a 2-core machine), as several processes where one
CPU each is free for them or where one process could not hold every socket within the file
descriptor limit. First the REST path's capacity: the turns a second the worker posts back to
back, and its CPU per post. Then the worker steps up its number of active chats; each chat is
its own user with a stream socket and a ``/chats/watch`` socket, and posts a turn every
30-60 s that the simulator streams one event per frame. Each step starts its new chats
first, lets their first turns finish, and then measures the worker's CPU %, its loop lag p99,
its memory per chat and the simulator's CPU; the answer is the largest step under 80 % CPU
and 10 ms lag. Stepping stops at the first step over either line, where the simulator is
saturated (from there it, not the worker, would set the pace), or at the time budget; where
the file descriptor limit (raised soft to hard first) has no room for the last step, that
step shrinks to what fits and the output says so up front.
"""

from __future__ import annotations

import json
import math
import os
import resource
import secrets
import subprocess
import sys
import threading
import time
from typing import IO, Any

from loadtest.bench.client import organization_of, pinned_to
from loadtest.bench.core import Row
from loadtest.runner.processes import SimProcess

STEPS = (250, 500, 1000, 2000, 4000, 6000, 8000, 10_000)
CPU_LIMIT_PCT = 80.0
LAG_LIMIT_MS = 10.0
#: The simulator's CPUs at this share of their time: it, not the worker, sets the pace.
SIM_SATURATED_PCT = 90.0
#: Simulator processes at most (one per free CPU up to this; more where descriptors need).
SIM_PROCESSES = 4
#: Chats that post back to back when the REST path's capacity is measured (the worker's
#: ``POSTERS``), and accounts to spare.
POSTERS, SPARE_ACCOUNTS = 64, 100


def fds_needed(chats: int) -> int:
    """Descriptors a process holding ``chats`` chats needs: two sockets each (stream, watch),
    a REST connection for the ~2 s it stays open after each turn's post (one post per 30 s at
    most: one chat in 15), and the process's own files."""
    return 2 * chats + chats // 15 + 200


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard one; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def fit_steps(steps: tuple[int, ...], fds: int) -> tuple[tuple[int, ...], str]:
    """The steps the worker's descriptor limit ``fds`` has room for, the last shrunk to what
    fits, and a note saying so ("" when every step fits)."""
    top = max(steps)
    if fds_needed(top) <= fds:
        return steps, ""
    room = top
    while room > 0 and fds_needed(room) > fds:
        room -= 50
    fitted = (*(n for n in steps if n < room), room)
    need = fds_needed(top)
    return fitted, (
        f"the file descriptor limit ({fds:,}, hard) leaves the worker room for {room:,} "
        f"chats, not {top:,}: the last step is {room:,}; {top:,} chats need {need:,} "
        f"(raise the hard limit: `ulimit -Hn {need}` as root, or docker run "
        f"--ulimit nofile={need})"
    )


def _start_sims(cpus: list[int], accounts: int) -> list[tuple[SimProcess, dict[str, Any]]]:
    """A simulator pinned to each of ``cpus``, each with ``accounts`` accounts minted. From
    this thread: a child is told to stop when the thread that started it ends."""
    sims: list[tuple[SimProcess, dict[str, Any]]] = []
    try:
        for cpu in cpus:
            pinned_to(cpu)()  # the simulator inherits it
            token = secrets.token_urlsafe(16)
            sim = SimProcess.start("b", token, {"rate_limit_per_minute": -1}, quiet=True)
            sims.append((sim, {}))
            org = organization_of(sim.url, token)
            sims[-1] = (sim, {"url": sim.url, "org": org, "tokens": sim.accounts(accounts)})
    except BaseException:
        for sim, _ in sims:
            sim.stop()
        raise
    return sims


def sim_cpus(top: int, fds: int) -> tuple[int, list[int]]:
    """(the worker's CPU, one CPU per simulator process): the simulators get every other
    CPU (up to ``SIM_PROCESSES``), and more processes than CPUs where each must hold fewer
    sockets than ``top`` chats' within the descriptor limit ``fds``."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    worker, free = cpus[0], cpus[1:] or cpus[:1]
    count = min(len(free), SIM_PROCESSES)
    while fds_needed(math.ceil(top / count)) > fds:
        count += 1
    return worker, [free[i % len(free)] for i in range(count)]


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (user + system), from ``/proc``; 0 where there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class CpuSampler:
    """The simulators' CPU time, sampled a few times a second in a thread, so a window the
    worker timed (``time.monotonic``, one clock for every process) can be looked up."""

    def __init__(self, pids: list[int], every_s: float = 0.25) -> None:
        self._pids = pids
        self._every = every_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), sum(cpu_seconds(p) for p in self._pids)))
            self._stop.wait(self._every)

    def percent(self, start: float, end: float) -> float:
        """CPU % between the samples nearest ``start`` and ``end`` (0 without two)."""
        inside = [(t, cpu) for t, cpu in self.samples if start <= t <= end]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return 0.0
        (t0, c0), (t1, c1) = inside[0], inside[-1]
        return 100 * (c1 - c0) / (t1 - t0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_scale_bench(
    seconds: float = 1.0, steps: tuple[int, ...] = STEPS, budget_s: float | None = None
) -> list[Row]:
    """Rows per step and the verdict; the budget (default 100 s x ``seconds``) bounds it."""
    budget = budget_s if budget_s is not None else 100.0 * seconds
    window = max(1.0, 5.0 * seconds)
    deadline = time.monotonic() + budget
    fds = raise_fd_limit()
    steps, fd_note = fit_steps(steps, fds)
    if fd_note:
        print(f"  (note: {fd_note})", flush=True)
    top = max(steps)
    worker_cpu, cpus = sim_cpus(top, fds)
    sims = _start_sims(cpus, math.ceil((top + POSTERS) / len(cpus)) + SPARE_ACCOUNTS)
    sim_cpu_count = f"{len(set(cpus))} CPU" + ("s" if len(set(cpus)) > 1 else "")
    worker = subprocess.Popen(
        [sys.executable, "-m", "loadtest.bench.scale_worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=pinned_to(worker_cpu),
    )
    sampler = CpuSampler([sim.proc.pid for sim, _ in sims])
    rows: list[Row] = []
    best, stop, last_rate = 0, "", 0.0

    def ask(stdin: IO[str], stdout: IO[str], line: str) -> dict[str, Any]:
        stdin.write(line)
        stdin.flush()
        answer = stdout.readline()
        if not answer:
            raise RuntimeError("the scale worker died")
        result: dict[str, Any] = json.loads(answer)
        return result

    try:
        stdin: IO[str] | None = worker.stdin
        stdout: IO[str] | None = worker.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps({"sims": [config for _, config in sims]}) + "\n")
        # The REST path's capacity first, on a worker with nothing else to do.
        posted = ask(stdin, stdout, f"post {min(window, 2.0)}\n")
        post_rows: list[Row] = [
            ("REST path: turns the worker posts back to back", posted["posts_per_s"], "turns/s"),
            ("REST path: worker CPU per posted turn", posted["cpu_us_per_post"], "us"),
            ("REST path: worker CPU while posting", posted["cpu_pct"], "%"),
            (
                f"REST path: simulator CPU while posting (of its {sim_cpu_count})",
                sampler.percent(posted["start"], posted["end"]) / len(set(cpus)),
                "%",
            ),
        ]
        done = 0
        failed_starts: dict[str, int] = {}
        for n in steps:
            left = deadline - time.monotonic()
            if last_rate and (n - done) / last_rate + window + 3 > left:
                stop = f"the time budget ({budget:.0f} s, --seconds) ends before {n:,} chats"
                break
            step = ask(stdin, stdout, f"{n} {window} {max(1.0, left - window - 3)}\n")
            last_rate = (step["chats"] - done) / max(step["setup_s"], 0.001)
            done = step["chats"]
            label = f"{done:>6,} active chats:"
            sim_pct = sampler.percent(step["start"], step["end"]) / len(set(cpus))
            rows += [
                (f"{label} chats started (before the window)", last_rate, "chats/s"),
                (
                    f"{label} simulator CPU while they started",
                    sampler.percent(step["setup_start"], step["setup_end"]) / len(set(cpus)),
                    "%",
                ),
                (f"{label} worker CPU", step["cpu_pct"], "%"),
                (f"{label} loop lag p99", step["lag_p99_ms"], "ms"),
                (f"{label} longest garbage collection", step["gc_max_ms"], "ms"),
                (f"{label} memory", step["kb_per_chat"], "KB/chat"),
                (f"{label} frames read", step["frames_per_s"], "frames/s"),
                (f"{label} turns posted", step["posts_per_s"], "turns/s"),
                (f"{label} simulator CPU (of its {sim_cpu_count})", sim_pct, "%"),
            ]
            if step["start_failures"]:
                failed_starts = step["start_failures"]
                total = sum(failed_starts.values())
                rows.append((f"{label} chats that failed to start (so far)", total, "chats"))
            if step["post_failures"]:
                total = sum(step["post_failures"].values())
                rows.append((f"{label} turn posts that failed (so far)", total, "posts"))
            if sim_pct >= SIM_SATURATED_PCT:
                # A simulator behind its chats sends late and in bursts: the worker's figures
                # at this step are not the load the step names.
                stop = (
                    f"at {done:,} chats the simulator is saturated ({sim_pct:.0f} % of its "
                    f"{sim_cpu_count}): from here it, not the worker, sets the pace; give it "
                    "more CPUs (it takes every CPU but the worker's, up to "
                    f"{SIM_PROCESSES})"
                )
                break
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
            if fd_note:
                stop += f" ({fd_note})"
        rows += post_rows
    finally:
        sampler.stop()
        if worker.stdin:
            worker.stdin.close()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
        for sim, _ in sims:
            sim.stop()
    rows.append(("most active chats per worker (CPU < 80 %, lag p99 < 10 ms)", best, "chats"))
    print(f"  (stepping stopped: {stop})")
    for reason, count in sorted(failed_starts.items(), key=lambda item: -item[1]):
        print(f"  (failed to start: {count:,} x {reason})")
    return rows
