"""When a step of the capacity search is clearly past what the target takes, and may stop.

GuideLLM's rule, as chatload applies it to turns: over a sliding window of one-second
samples, the turns in flight and TTFT are both rising, each with a least-squares slope whose
t statistic clears ``T_CRITICAL``. A target that keeps up holds both level (in flight grows
only with load, which a step holds fixed); one that does not piles work up, and its queue
shows in both.

An SLO broken beyond recovery: a bound that only a share of the samples may exceed (a p95,
an error rate) is lost for the step once more samples have exceeded it than that share of the
step's projected total, even if every sample still to come holds. Pure: the runner feeds the
samples and the counts.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Final

#: Samples in the window (one a second).
WINDOW: Final = 10
#: A one-sided t test at about 99.5 % for the window's 8 degrees of freedom.
T_CRITICAL: Final = 3.36
#: The projection of a step's total from its pace so far needs this much of the step behind
#: it, this many breaches, and this margin (the pace may still change).
RECOVERY_MIN_SHARE: Final = 0.25
RECOVERY_MIN_BREACHES: Final = 10
RECOVERY_MARGIN: Final = 1.25


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


def beyond_recovery(breaches: int, seen: int, allowed: float, done: float) -> bool:
    """Whether a bound that ``allowed`` (a share) of the samples may exceed is lost for the
    step: ``breaches`` of ``seen`` samples exceed it with ``done`` (a share) of the step
    behind, more than ``allowed`` of the step's projected total, by ``RECOVERY_MARGIN``."""
    if breaches < RECOVERY_MIN_BREACHES or done < RECOVERY_MIN_SHARE:
        return False
    projected = seen / min(1.0, done)
    return breaches > allowed * projected * RECOVERY_MARGIN
