"""Over-saturation: a step of the capacity search that is clearly past what the target takes.

GuideLLM's rule, as chatload applies it to turns: over a sliding window of one-second
samples, the turns in flight and TTFT are both rising, each with a least-squares slope whose
t statistic clears ``T_CRITICAL``. A target that keeps up holds both level (in flight grows
only with load, which a step holds fixed); one that does not piles work up, and its queue
shows in both. Pure: the runner feeds the samples.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Final

#: Samples in the window (one a second).
WINDOW: Final = 10
#: A one-sided t test at about 99.5 % for the window's 8 degrees of freedom.
T_CRITICAL: Final = 3.36


def rising(values: list[float]) -> bool:
    """Whether evenly spaced ``values`` rise, by the t statistic of their OLS slope."""
    n = len(values)
    if n < 3:
        return False
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    sxx = sum((x - mean_x) ** 2 for x in range(n))
    slope = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values)) / sxx
    residuals = sum((y - mean_y - slope * (x - mean_x)) ** 2 for x, y in enumerate(values))
    if slope <= 0:
        return False
    if residuals == 0:
        return True
    stderr = math.sqrt(residuals / (n - 2) / sxx)
    return slope / stderr > T_CRITICAL


class Saturation:
    """Feeds one-second samples; ``saturated`` once both series rise over the window."""

    def __init__(self, window: int = WINDOW) -> None:
        self._in_flight: deque[float] = deque(maxlen=window)
        self._ttft: deque[float] = deque(maxlen=window)

    def sample(self, in_flight: int, ttft_ms: float | None) -> bool:
        """One second's sample: turns in flight now, and the TTFT p50 of the turns whose
        first output came in that second (None when none did: the sample is skipped)."""
        if ttft_ms is None:
            return False
        self._in_flight.append(float(in_flight))
        self._ttft.append(ttft_ms)
        full = len(self._ttft) == self._ttft.maxlen
        return full and rising(list(self._in_flight)) and rising(list(self._ttft))
