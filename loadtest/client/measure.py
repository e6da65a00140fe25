"""The per-frame loop of every stream reader: feed each frame to the core, time the cost."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from loadtest.metrics.recorder import Recorder
from loadtest.stream import StreamMeter


def measure_frames(
    frames: Iterable[tuple[bytes, int]],
    meter: StreamMeter,
    recorder: Recorder,
    on_turns_ended: Callable[[], None],
) -> None:
    """Decode and record each ``(payload, receive time)``; ``decode_time`` is our own cost."""
    clock = time.perf_counter_ns
    feed = meter.feed
    decode_time = recorder.decode_time
    for payload, t in frames:
        start = clock()
        ended = feed(payload, t)
        decode_time(clock() - start)
        if ended:
            on_turns_ended()
