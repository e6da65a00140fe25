"""One websocket's frames into the recorder and its chat's turn tracker.

Pure: the caller timestamps each frame as it is read and passes the bytes in. The loop over
a connection's frames lives here, whole, because it is the hottest code in chatload. The
frame nearly every frame is (one live text part of a step under way) costs one call, into the
tracker's fast path (``TurnTracker.one_part``), which measures it whole; any other frame, or
one the fast path declines, one call into the recorder and one into the tracker, the general
path: both measure a frame alike (a test feeds the same frames through each). What it has to
say (the turns a frame ended) it yields, as the tracker returns them: no callback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Final

from loadtest.core.decode import PING, decode_frame
from loadtest.core.recorder import Recorder
from loadtest.core.replicas import ReplicaTally
from loadtest.core.tracker import TurnTracker
from loadtest.core.turn import Turn

#: The decode error a frame becomes when the tracker could not use it though every field
#: passed its checks: the last guard that keeps one bad frame from killing the reader.
TRACKER_FAULT: Final = "the turn tracker could not use this frame"

#: ``decode_time`` is sampled on one frame in this many: its distribution, not its sum, is
#: the figure, and two clock reads and a record per frame would be measurement disturbing
#: what it measures.
DECODE_TIME_SAMPLE: Final = 32


def _no_clock() -> int:
    """Never called: without a clock the countdown to a timed frame never reaches zero."""
    return 0


class StreamMeter:
    """Decodes and measures the frames of one stream connection.

    ``tracker`` is None for a read-only watcher: its frames are counted, no turn is its own.
    ``clock`` (ns), when given, times one frame in ``DECODE_TIME_SAMPLE`` from bytes to
    recorded: ``decode_time``, the generator's own cost. The meter reads no other clock.
    """

    __slots__ = ("_clock", "_recorder", "_tracker", "replica")

    def __init__(
        self,
        recorder: Recorder,
        tracker: TurnTracker | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self._recorder = recorder
        self._tracker = tracker
        self._clock = clock
        #: The tally of the replica this connection reads from, when the run has several.
        self.replica: ReplicaTally | None = None

    def feed(self, data: bytes | str, t: int) -> list[Turn]:
        """One text frame read at ``t``; returns the turns it ended."""
        return [turn for ended in self.read(((data, t),)) for turn in ended]

    def read(self, frames: Iterable[tuple[bytes | str, int]]) -> Iterator[Sequence[Turn]]:
        """Every ``(payload, receive time)`` of a connection, read as the caller iterates;
        yields the turns a frame ended, as they end, and an empty list after a frame whose live
        statuses the tracker keeps (``keep_statuses``): the caller takes them then; nothing
        for any other frame."""
        recorder = self._recorder
        record_frame = recorder.frame
        replica = self.replica
        tracker = self._tracker
        track = tracker.feed if tracker is not None else None
        kept = tracker.statuses if tracker is not None else []
        # A frame of one live text part, the common one, is measured whole by the tracker's
        # fast path (one call), when its recorder is this meter's (a followed sub-agent's is
        # not: its frames are the run's, its parts its own).
        one_part = (
            tracker.one_part if tracker is not None and tracker.recorder is recorder else None
        )
        clock = self._clock or _no_clock
        # Counts down to the next timed frame; below zero (no clock) it never gets there.
        until_sample = DECODE_TIME_SAMPLE if self._clock is not None else -1
        start = 0
        for data, t in frames:
            until_sample -= 1
            if not until_sample:
                start = clock()
            decoded = decode_frame(data)
            if type(decoded) is list:
                fast = False
                if one_part is not None and len(decoded) == 1:
                    try:
                        fast = one_part(decoded[0], t, len(data), recorder)
                    except Exception:  # it records nothing before it is sure: the general
                        fast = False  # path takes the frame and says what was wrong
                if fast:
                    if replica is not None:
                        replica.frame(1)
                else:
                    record_frame(t, len(data), len(decoded))
                    if replica is not None:
                        replica.frame(len(decoded))
                    if track is not None:
                        try:
                            ended = track(decoded, t)
                        except Exception as exc:  # a bug of ours must not kill the reader
                            recorder.decode_error(f"{TRACKER_FAULT}: {type(exc).__name__}", t)
                            ended = ()
                        if ended or kept:
                            yield ended
            elif decoded is PING:
                recorder.ping()
            else:
                recorder.decode_error(decoded.reason, t)  # type: ignore[union-attr]
                if replica is not None:
                    replica.error()
            if not until_sample:
                recorder.decode_time(clock() - start)
                until_sample = DECODE_TIME_SAMPLE
