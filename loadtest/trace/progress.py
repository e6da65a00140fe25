"""A progress bar for long exports: one line on a terminal's stderr, redrawn in place."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

WIDTH = 30
#: Redraws at most this often: a big export reads thousands of rows a second.
EVERY_S = 0.2


class ProgressBar:
    """``update(fraction, detail)`` redraws ``what [████▌     ]  45%  detail``; with no
    fraction known, ``what  detail``. Off (silent) when the stream is not a terminal, so
    logs and pipes get only the summary the command prints at the end."""

    def __init__(
        self,
        what: str,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._clock = clock
        self._last = -EVERY_S
        self._width = 0

    def due(self) -> bool:
        """Whether a redraw would show now: callers skip formatting their detail when not."""
        return self.enabled and self._clock() - self._last >= EVERY_S

    def update(self, fraction: float | None, detail: str, force: bool = False) -> None:
        now = self._clock()
        if not self.enabled or (not force and now - self._last < EVERY_S):
            return
        self._last = now
        self._draw(bar(fraction) + "  " + detail if fraction is not None else detail)

    def note(self, text: str) -> None:
        """A line that stays (a wait on the rate limit): above the bar on a terminal."""
        if self.enabled:
            self._draw("")
            self.stream.write("\r" + text + "\n")
            self._width = 0
            self._last = -EVERY_S
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0

    def _draw(self, body: str) -> None:
        line = f"{self.what} {body}" if body else ""
        pad = max(0, self._width - len(line))
        self.stream.write("\r" + line + " " * pad)
        self.stream.flush()
        self._width = len(line)


def bar(fraction: float) -> str:
    """``[█████▌      ]  45%``: eighths of a cell, so slow progress still moves."""
    fraction = min(1.0, max(0.0, fraction))
    eighths = round(fraction * WIDTH * 8)
    full, part = divmod(eighths, 8)
    cells = "█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")
    return f"[{cells.ljust(WIDTH)}] {fraction * 100:3.0f}%"
