"""``chatload bench``: chatload's own speed, printed as figures and ratios.

Every measurement runs pinned to one CPU so figures are per core and comparable.
"""

from __future__ import annotations

import argparse
import os

from loadtest.bench.core import Row, run_core_bench

SECTIONS = ("core", "sim", "client", "scale", "pubsub")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--only",
        choices=SECTIONS,
        action="append",
        help="run only this section (repeatable): core = decode+record cost; sim = the "
        "simulator's delivery capacity; client = one worker's frame rates, reader against "
        "reader; scale = active chats per worker process (each a stream and a watch socket, a "
        "turn every 30-60 s; the worker on one CPU, the simulator on the others; each step's "
        "chats start before its window; steps up to 10,000 until the worker's CPU reaches "
        "80 %% or its loop lag p99 10 ms, the simulator saturates, or 100 s x --seconds run "
        "out, and says which; the file descriptor need is checked first; then the turns a "
        "second the REST path posts); "
        "pubsub = the replicas' ChatStreamNotifyMessage over PostgreSQL NOTIFY and NATS "
        "(publish -> receive latency and messages/s with 1, 10 and 100 replicas listening; "
        "starts private servers, needs the postgresql and nats-server packages)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=1.0,
        help="time budget per measurement (default 1). In the client section the readers "
        "(each one long-lived process pinned to one CPU, reading the simulator's own frame "
        "replayed back to back from the other CPU so none waits on the sender) take turns in "
        "15 short rounds of 0.15 x SECONDS of CPU each after a warm-up round, the order "
        "rotating every round; each figure is the median of its rounds, printed with its "
        "interquartile range and min-max, and each ratio is the median of the ratios within "
        "a round, so a drift of the machine's speed cancels out",
    )


def _pin_one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity here)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def _all_cores(cpus: set[int] | None) -> None:
    """Back to every CPU: the simulator benches place the server and reader on two."""
    if cpus is not None:
        os.sched_setaffinity(0, cpus)


def _print(title: str, rows: list[Row]) -> None:
    print(f"\n{title}")
    for name, value, unit in rows:
        print(f"  {name:<60} {value:>14,.1f} {unit}")


def main(args: argparse.Namespace) -> int:
    sections = args.only or list(SECTIONS)
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if set(sections) - {"pubsub"}:
        print("chatload bench: every figure is for one CPU core, unless its title says not")
    if "core" in sections:
        print(f"(core section {_pin_one_core()})")
        _print("Pure core: decode + record, per event", run_core_bench(args.seconds))
        _all_cores(cpus)
    if "sim" in sections:
        from loadtest.sim.bench import run_sim_bench

        _print(
            "Simulator: what it delivers to one reader", run_sim_bench(max(2.0, args.seconds * 3))
        )
    if "client" in sections:
        from loadtest.bench.client import run_client_bench

        _print("Generator: one chatload worker process", run_client_bench(args.seconds))
    if "scale" in sections:
        from loadtest.bench.scale import run_scale_bench

        _print(
            "Active chats per worker process (worker on one CPU, simulator on the others)",
            run_scale_bench(args.seconds),
        )
    if "pubsub" in sections:
        from loadtest.bench.pubsub import run_pubsub_bench

        _print(
            "Pubsub between replicas: PostgreSQL NOTIFY and NATS (whole machine, not one core)",
            run_pubsub_bench(args.seconds),
        )
    return 0
