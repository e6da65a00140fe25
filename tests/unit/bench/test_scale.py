"""The scale bench's plan: what the descriptor limit leaves room for, and where the
simulators run."""

from __future__ import annotations

import pytest

from loadtest.bench import scale
from loadtest.bench.scale import STEPS, fds_needed, fit_steps, sim_cpus


def test_every_step_fits_a_roomy_limit() -> None:
    assert fit_steps(STEPS, 1_048_576) == (STEPS, "")


def test_a_tight_limit_shrinks_the_last_step_and_says_what_10000_need() -> None:
    steps, note = fit_steps(STEPS, 20_000)
    assert steps[:-1] == (250, 500, 1000, 2000, 4000, 6000, 8000)
    assert 8000 < steps[-1] < 10_000 and fds_needed(steps[-1]) <= 20_000
    need = fds_needed(10_000)
    assert need > 20_000
    assert f"{need:,}" in note and f"ulimit -Hn {need}" in note and "20,000" in note


def test_simulators_take_every_other_cpu_and_more_processes_when_descriptors_need(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scale.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert sim_cpus(1000, 1_048_576) == (0, [1])
    # 10,000 chats need more than 20,000 descriptors: two processes, on the one free CPU.
    assert sim_cpus(10_000, 20_000) == (0, [1, 1])
    monkeypatch.setattr(scale.os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert sim_cpus(10_000, 1_048_576) == (0, [1, 2, 3, 4])
