"""The client bench's parts: a figure as its median with the spread of its rounds, and the
two CPUs reader and simulator are pinned to."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from loadtest.bench.client import pinned_to, spread, two_cpus


def test_a_figure_is_its_median_with_the_spread() -> None:
    mid, unit = spread([5.0, 1.0, 3.0, 2.0, 4.0], "events/s")
    assert mid == 3.0
    assert unit.startswith("events/s  [IQR ") and "min-max 1 - 5, n=5]" in unit
    assert spread([7.0], "x", 1) == (7.0, "x  [IQR 7.0 - 7.0 (0 %), min-max 7.0 - 7.0, n=1]")


def test_reader_and_simulator_get_cpus_this_process_may_use() -> None:
    reader, sim = two_cpus()
    if hasattr(os, "sched_getaffinity"):
        allowed = os.sched_getaffinity(0)
        assert {reader, sim} <= allowed
        assert (reader != sim) == (len(allowed) > 1)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_a_child_is_pinned_to_its_cpu() -> None:
    cpu = two_cpus()[1]
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
        capture_output=True,
        text=True,
        preexec_fn=pinned_to(cpu),
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == f"[{cpu}]"
