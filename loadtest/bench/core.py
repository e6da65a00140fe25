"""The pure core's cost: decode + record per event, against a naive baseline in one run.

Naive = what a first attempt would do: stdlib ``json`` and a pydantic model per event.
Both sides feed the same recorder, so the ratio is the decoder's and tracker's doing.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

import orjson

from loadtest.core.histogram import Histogram
from loadtest.core.meter import StreamMeter
from loadtest.core.recorder import Recorder
from loadtest.core.tracker import TurnTracker
from loadtest.protocol.events import MESSAGE, MESSAGE_PART, STATUS
from loadtest.protocol.models import ChatStatus, ChatStreamEvent

Row = tuple[str, float, str]

CHAT_ID = str(uuid.UUID(int=7))


def part_event(i: int) -> dict[str, object]:
    """A text delta as Coder streams it: a few words per event."""
    return {
        "type": MESSAGE_PART,
        "chat_id": CHAT_ID,
        MESSAGE_PART: {
            "role": "assistant",
            "part": {"type": "text", "text": f"token {i} of a reply "},
        },
    }


def array_frame(batch: int) -> bytes:
    """An era B+ frame of ``batch`` parts (bare array, trailing newline)."""
    return orjson.dumps([part_event(i) for i in range(batch)]) + b"\n"


def running_turn_meter(recorder: Recorder) -> StreamMeter:
    """A meter whose chat has one running turn, so every part counts as its output."""
    tracker = TurnTracker(recorder)
    tracker.start(0)
    tracker.feed([{"type": MESSAGE, MESSAGE: {"id": 1, "role": "user"}}], 1)
    tracker.feed([{"type": STATUS, STATUS: {"status": ChatStatus.RUNNING.value}}], 2)
    return StreamMeter(recorder, tracker, time.perf_counter_ns)


def _time(loop: Callable[[int], None], budget_s: float) -> float:
    """Seconds per iteration of ``loop(n)``, growing n until it runs ``budget_s``."""
    n = 64
    while True:
        start = time.perf_counter()
        loop(n)
        elapsed = time.perf_counter() - start
        if elapsed >= budget_s:
            return elapsed / n
        n *= max(2, int(budget_s / max(elapsed, 1e-6)))


def decode_and_record(batch: int, budget_s: float) -> float:
    """Seconds per frame for a user's own loop (``StreamMeter.read``): decode and record."""
    frame = array_frame(batch)
    meter = running_turn_meter(Recorder())

    def loop(n: int) -> None:
        frames = ((frame, 10 + i * 1000) for i in range(n))
        for _ in meter.read(frames):
            pass

    return _time(loop, budget_s)


def naive(batch: int, budget_s: float) -> float:
    """Seconds per frame for stdlib json + pydantic validation per event."""
    frame = array_frame(batch)
    recorder = Recorder()

    def loop(n: int) -> None:
        validate = ChatStreamEvent.model_validate
        for i in range(n):
            events = [validate(e) for e in json.loads(frame)]
            recorder.frame(i, len(frame), len(events))

    return _time(loop, budget_s)


def histogram_record(budget_s: float) -> tuple[float, float | None]:
    """ns per ``record`` for ours and for the ``hdrhistogram`` package (if installed)."""
    values = [(i * 7919) % 3_000_000 + 1 for i in range(4096)]
    ours = Histogram()

    def loop_ours(n: int) -> None:
        record = ours.record
        for i in range(n):
            record(values[i & 4095])

    theirs_ns: float | None = None
    try:
        from hdrh.histogram import HdrHistogram
    except ImportError:  # pragma: no cover - a dev dependency
        pass
    else:
        theirs = HdrHistogram(1, 3_600_000_000, 3)

        def loop_theirs(n: int) -> None:
            record = theirs.record_value
            for i in range(n):
                record(values[i & 4095])

        theirs_ns = _time(loop_theirs, budget_s) * 1e9
    return _time(loop_ours, budget_s) * 1e9, theirs_ns


def run_core_bench(budget_s: float = 1.0) -> list[Row]:
    rows: list[Row] = []
    for batch in (1, 20, 200):
        ours = decode_and_record(batch, budget_s)
        base = naive(batch, budget_s)
        rows.append(
            (f"core {batch:>3}-event frames: decode+record", ours / batch * 1e9, "ns/event")
        )
        rows.append((f"core {batch:>3}-event frames: decode+record", batch / ours, "events/s"))
        rows.append(
            (f"core {batch:>3}-event frames: naive json+pydantic", batch / base, "events/s")
        )
        rows.append((f"core {batch:>3}-event frames: speed-up over naive", base / ours, "x"))
    ours_ns, theirs_ns = histogram_record(budget_s)
    rows.append(("histogram record: chatload", ours_ns, "ns/value"))
    if theirs_ns is not None:
        rows.append(("histogram record: hdrhistogram package", theirs_ns, "ns/value"))
        rows.append(("histogram record: speed-up over hdrhistogram", theirs_ns / ours_ns, "x"))
    return rows
