"""The per-frame loop of every stream reader: feed each frame to the core, time the cost."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from loadtest.metrics.recorder import Recorder
from loadtest.stream import StreamMeter

#: ``decode_time`` is sampled on one frame in this many: its distribution, not its sum, is
#: the figure, and two clock reads and a record per frame would be measurement disturbing
#: what it measures.
DECODE_TIME_SAMPLE = 8


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
    for n, (payload, t) in enumerate(frames, 1):
        if n % DECODE_TIME_SAMPLE:
            ended = feed(payload, t)
        else:
            start = clock()
            ended = feed(payload, t)
            decode_time(clock() - start)
        if ended:
            on_turns_ended()
