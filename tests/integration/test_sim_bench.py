"""The simulator's capacity bench runs and reports sane numbers."""

from __future__ import annotations

from loadtest.sim.bench import run_sim_bench


def test_sim_bench_rows() -> None:
    rows = run_sim_bench(seconds=0.3)
    names = [name for name, _, _ in rows]
    assert len(names) == len(set(names)) == 9
    assert all(value > 0 for _, value, _ in rows), rows
    values = {name: value for name, value, _ in rows}
    assert values["sim firehose batch=20 events/s"] > values["sim firehose batch=1 events/s"]
    assert values["sim turn generator events/s"] > values["sim turn generator frames/s"]
