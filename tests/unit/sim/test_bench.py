"""The simulator's own capacity bench, briefly: it starts a real simulator process on
127.0.0.1, reads each benchmark socket, reports a rate per row, and leaves nothing behind."""

from __future__ import annotations

import os

from loadtest.sim.bench import run_sim_bench


def test_the_bench_reports_positive_rates_for_each_socket_and_restores_affinity() -> None:
    before = os.sched_getaffinity(0)
    rows = run_sim_bench(seconds=0.3)
    assert os.sched_getaffinity(0) == before
    names = [name for name, _, _ in rows]
    for socket in ("firehose batch=1", "firehose batch=20", "turn generator"):
        assert [f"sim {socket} {unit}" for unit in ("frames/s", "events/s", "MB/s")] == [
            n for n in names if n.startswith(f"sim {socket} ")
        ]
    assert all(value > 0 for _, value, _ in rows)
    by_name = {name: value for name, value, _ in rows}
    # Twenty deltas a frame: about twenty times the events of each frame.
    ratio = by_name["sim firehose batch=20 events/s"] / by_name["sim firehose batch=20 frames/s"]
    assert 19 <= ratio <= 21
