"""Made-up runs for the tests: a recorder driven through real turns, a run's info."""

from __future__ import annotations

from datetime import UTC, datetime

from loadtest.core.meter import StreamMeter
from loadtest.core.recorder import Recorder
from loadtest.core.tracker import TurnTracker
from loadtest.report.model import Load, RunInfo, Target
from tests.unit.events import MS, array_frame, message, part, retry, status


def feed_some(recorder: Recorder, seed: int, frames: int) -> None:
    """Drive a recorder through real turns, a retry, errors and pings."""
    tracker = TurnTracker(recorder)
    meter = StreamMeter(recorder, tracker)
    t = seed * 7 * MS
    for turn in range(frames):
        tracker.start(t)
        meter.feed(array_frame(message(2 * turn + 1), status("running")), t + 3 * MS)
        if (seed + turn) % 3 == 0:
            meter.feed(array_frame(retry(1, 1000)), t + 5 * MS)
        meter.feed(array_frame(*[part()] * ((seed + turn) % 5 + 1)), t + (10 + seed) * MS)
        meter.feed(
            array_frame(
                message(
                    2 * turn + 2,
                    "assistant",
                    output_tokens=seed + 2,
                    text="x" * ((seed + turn) % 5 + 1),
                ),
                status("waiting" if turn % 4 else "error"),
            ),
            t + 900 * MS,
        )
        meter.feed(b'{"type":"ping"}', t + 901 * MS)
        meter.feed(b"not json", t + 902 * MS)
        recorder.request("chat_message_latency", (seed + 1) * MS)
        recorder.decode_time(1000 + seed)
        t += 1100 * MS


def chat_of_turns(recorder: Recorder, ttfts_ms: list[int]) -> None:
    """One chat: its first turn (the create's) and follow-ups, each with the TTFT given and
    its end 50 ms later."""
    tracker = TurnTracker(recorder)
    meter = StreamMeter(recorder, tracker)
    t = 0
    for i, ttft in enumerate(ttfts_ms):
        tracker.start(t).initial = i == 0
        meter.feed(array_frame(message(2 * i + 1), status("running")), t + 2 * MS)
        meter.feed(array_frame(part()), t + ttft * MS)
        meter.feed(
            array_frame(
                message(2 * i + 2, "assistant", output_tokens=3, text="x"), status("waiting")
            ),
            t + (ttft + 50) * MS,
        )
        latency = "chat_create_latency" if i == 0 else "chat_message_latency"
        recorder.request(latency, (20 if i == 0 else 5) * MS)
        t += 1000 * MS


def run_info(duration: float = 2.0) -> RunInfo:
    started = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)
    return RunInfo(
        started_at=started,
        ended_at=started,
        duration_s=duration,
        complete=True,
        scenario="smoke",
        workers=0,
        load=Load(mode="closed", users=1),
        target=Target(url="http://127.0.0.1:1", era="a"),
    )
