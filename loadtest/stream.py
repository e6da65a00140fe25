"""One websocket's frames into the recorder and its chat's turn tracker. Pure: the caller
timestamps each frame as it is read and passes the bytes in."""

from __future__ import annotations

from loadtest.decode import PING, decode_frame
from loadtest.metrics.recorder import Recorder
from loadtest.turns import Turn, TurnTracker


class StreamMeter:
    """Decodes and measures the frames of one stream connection.

    ``tracker`` is None for a read-only watcher: its frames are counted, no turn is its own.
    """

    __slots__ = ("_recorder", "_tracker")

    def __init__(self, recorder: Recorder, tracker: TurnTracker | None = None) -> None:
        self._recorder = recorder
        self._tracker = tracker

    def feed(self, data: bytes | str, t: int) -> list[Turn]:
        """One text frame read at ``t``; returns the turns it ended."""
        decoded = decode_frame(data)
        if type(decoded) is list:
            self._recorder.frame(t, len(data), len(decoded))
            if self._tracker is None:
                return []
            return self._tracker.feed(decoded, t)
        if decoded is PING:
            self._recorder.ping()
        else:
            self._recorder.decode_error(decoded.reason, t)  # type: ignore[union-attr]
        return []
