"""The scale bench at a tiny size: chats come up with both sockets, every step reports, the
REST path's capacity is measured, and nothing fails to start."""

from __future__ import annotations

import pytest

from loadtest.bench import scale
from loadtest.bench.scale import run_scale_bench


@pytest.mark.slow  # long: make test-all (make test stays under 10 minutes on 2 cores)
def test_scale_bench_steps_and_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run with two simulator processes, as on a machine with spare cores or under a tight
    descriptor limit (the chats are dealt out between them)."""
    plan = scale.sim_cpus
    monkeypatch.setattr(
        scale, "sim_cpus", lambda top, fds: (plan(top, fds)[0], plan(top, fds)[1][:1] * 2)
    )
    rows = run_scale_bench(seconds=0.2, steps=(3, 6), budget_s=60)
    values = {name.strip(): (value, unit) for name, value, unit in rows}
    assert values["3 active chats: worker CPU"][1] == "%"
    assert values["6 active chats: memory"][0] > 0
    assert values["6 active chats: chats started (before the window)"][0] > 0
    assert any(name.startswith("6 active chats: simulator CPU") for name in values)
    assert not any("failed" in name for name in values)
    posted, unit = values["REST path: turns the worker posts back to back"]
    assert posted > 0 and unit == "turns/s"
    assert values["REST path: worker CPU per posted turn"][0] > 0
    best = values["most active chats per worker (CPU < 80 %, lag p99 < 10 ms)"][0]
    assert best in (0, 3, 6)
