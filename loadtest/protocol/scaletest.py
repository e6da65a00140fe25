"""Coder's chat scaletest Prometheus metrics as data: names, labels, buckets, stages. No I/O.

Source: coder/coder scaletest/chat/metrics.go (names, help texts, label sets, buckets, the
five failure stages) and scaletest/chat/run.go (when each is observed: ``phase`` is
``initial`` for a chat's first turn, ``follow_up`` after; the message latency is observed
for follow-ups only, a first turn being its create). ``chatload run --prometheus`` serves
these names so Coder's own dashboards and alerts read a chatload run unchanged.

Buckets: ``prometheus.ExponentialBucketsRange(0.05, 120, 18)`` and ``(0.1, 300, 18)``,
computed here bit for bit as Go computes them (``go_pow`` below).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

#: metrics.go: ``Namespace: "coderd"``, ``Subsystem: "scaletest"``.
PREFIX: Final = "coderd_scaletest_"
#: metrics.go ``MetricLabelRunID``: on every series.
RUN_ID: Final = "run_id"
PHASE: Final = "phase"
STATUS: Final = "status"
STAGE: Final = "stage"
PHASE_INITIAL: Final = "initial"
PHASE_FOLLOW_UP: Final = "follow_up"
PHASES: Final = (PHASE_INITIAL, PHASE_FOLLOW_UP)
#: metrics.go ``failureStage*``: the stages ``chat_stage_failures_total`` counts.
FAILURE_STAGES: Final = (
    "create_chat",
    "create_message",
    "stream_open",
    "stream_ended_early",
    "status_error",
)
#: run.go: ``chat_terminal_status_total`` counts ``waiting`` and ``error``.
TERMINAL_STATUSES: Final = ("waiting", "error")


def go_pow(x: float, y: float) -> float:
    """Go's ``math.Pow`` for a positive finite ``x`` and finite ``y`` (src/math/pow.go): the
    fraction of ``y`` through ``Exp(yf*Log(x))``, its integer part by repeated squaring of
    ``Frexp(x)``. Python's ``x ** y`` rounds differently in the last bits, and Coder's bucket
    bounds are printed to the last bit, so this is the formula the bounds come from."""
    if not (x > 0 and math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"go_pow takes a positive finite base and a finite power, not {x}, {y}")
    if y == 0 or x == 1:
        return 1.0
    if y == 1:
        return x
    if y == 0.5:
        return math.sqrt(x)
    if y == -0.5:
        return 1 / math.sqrt(x)
    yf, yi = math.modf(abs(y))
    a1, ae = 1.0, 0
    if yf != 0:
        if yf > 0.5:
            yf -= 1
            yi += 1
        a1 = math.exp(yf * math.log(x))
    x1, xe = math.frexp(x)
    i = int(yi)
    while i != 0:
        if not -(1 << 12) <= xe <= (1 << 12):
            raise ValueError(f"go_pow({x}, {y}) overflows")
        if i & 1:
            a1 *= x1
            ae += xe
        x1 *= x1
        xe <<= 1
        if x1 < 0.5:
            x1 += x1
            xe -= 1
        i >>= 1
    if y < 0:
        a1, ae = 1 / a1, -ae
    return math.ldexp(a1, ae)


def exponential_buckets_range(low: float, high: float, count: int) -> tuple[float, ...]:
    """Go's ``prometheus.ExponentialBucketsRange`` (prometheus/client_golang
    prometheus/histogram.go): ``growthFactor = Pow(max/min, 1/(count-1))``, bucket ``i`` is
    ``min * Pow(growthFactor, i)``."""
    if low <= 0 or high <= low or count < 1:
        raise ValueError(f"exponential_buckets_range({low}, {high}, {count}): need 0 < min < max")
    growth = go_pow(high / low, 1.0 / (count - 1)) if count > 1 else 1.0
    return tuple(low * go_pow(growth, float(i)) for i in range(count))


#: metrics.go ``chatRequestLatencyBuckets`` (create and message latency).
REQUEST_BUCKETS: Final = exponential_buckets_range(0.05, 120, 18)
#: metrics.go ``chatProcessingLatencyBuckets`` (everything else).
PROCESSING_BUCKETS: Final = exponential_buckets_range(0.1, 300, 18)


@dataclass(frozen=True, slots=True)
class ScaletestHistogram:
    name: str
    help: str
    buckets: tuple[float, ...]
    #: Labelled ``phase`` besides ``run_id``.
    phased: bool


#: metrics.go's histograms, in its order.
HISTOGRAMS: Final = (
    ScaletestHistogram(
        PREFIX + "chat_create_latency_seconds",
        "Time in seconds to create a chat and enqueue the initial turn.",
        REQUEST_BUCKETS,
        phased=False,
    ),
    ScaletestHistogram(
        PREFIX + "chat_message_latency_seconds",
        "Time in seconds to add a follow-up message to an existing chat.",
        REQUEST_BUCKETS,
        phased=True,
    ),
    ScaletestHistogram(
        PREFIX + "chat_conversation_duration_seconds",
        "Time in seconds from chat creation start until the conversation finishes or errors.",
        PROCESSING_BUCKETS,
        phased=False,
    ),
    ScaletestHistogram(
        PREFIX + "chat_time_to_running_seconds",
        "Time in seconds from the start of a chat turn until the chat enters running status.",
        PROCESSING_BUCKETS,
        phased=True,
    ),
    ScaletestHistogram(
        PREFIX + "chat_time_to_first_output_seconds",
        "Time in seconds from the start of a chat turn until the first output is received.",
        PROCESSING_BUCKETS,
        phased=True,
    ),
    ScaletestHistogram(
        PREFIX + "chat_time_to_terminal_status_seconds",
        "Time in seconds from the start of a chat turn until a terminal status is received.",
        PROCESSING_BUCKETS,
        phased=True,
    ),
)
#: Counters (names without the ``_total`` the exposition adds) and their help.
STAGE_FAILURES: Final = PREFIX + "chat_stage_failures"
STAGE_FAILURES_HELP: Final = "Total number of terminal stage-specific chat runner failures."
TERMINAL_STATUS: Final = PREFIX + "chat_terminal_status"
TERMINAL_STATUS_HELP: Final = "Total number of terminal chat statuses observed."
TURNS_COMPLETED: Final = PREFIX + "chat_turns_completed"
TURNS_COMPLETED_HELP: Final = (
    "Total number of chat turns (user→assistant exchanges) completed successfully."
)
RETRY_EVENTS: Final = PREFIX + "chat_retry_events"
RETRY_EVENTS_HELP: Final = "Total number of chat retry events observed."
ACTIVE_STREAMS: Final = PREFIX + "active_chat_streams"
ACTIVE_STREAMS_HELP: Final = "Current number of active chat streams."
