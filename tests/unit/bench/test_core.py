"""The core bench: its frames are ones the meter counts as output, and its rows agree with
each other (a rate is the inverse of its cost)."""

from __future__ import annotations

import orjson
import pytest

from loadtest.bench.core import array_frame, run_core_bench, running_turn_meter
from loadtest.core.recorder import Recorder


def test_every_part_of_a_bench_frame_is_a_running_turns_output() -> None:
    frame = array_frame(20)
    assert frame.endswith(b"\n") and len(orjson.loads(frame)) == 20
    recorder = Recorder()
    meter = running_turn_meter(recorder)
    for _ in meter.read((frame, 10 + i) for i in range(3)):
        pass
    counts = recorder.measurement().counts
    assert counts["frames"] == 3 and counts["events"] == 60


def test_the_rows_are_consistent() -> None:
    rows = {(name, unit): value for name, value, unit in run_core_bench(budget_s=0.002)}
    for batch in ("  1", " 20", "200"):
        cost = rows[(f"core {batch}-event frames: decode+record", "ns/event")]
        rate = rows[(f"core {batch}-event frames: decode+record", "events/s")]
        assert cost > 0 and rate == pytest.approx(1e9 / cost)
        naive = rows[(f"core {batch}-event frames: naive json+pydantic", "events/s")]
        speedup = rows[(f"core {batch}-event frames: speed-up over naive", "x")]
        assert speedup == pytest.approx(rate / naive)
    assert rows[("histogram record: chatload", "ns/value")] > 0
