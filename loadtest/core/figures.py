"""The one list of every figure chatload reports: name, where it lives, unit, formula.

Everything else is built from it: the recorder keeps a counter, histogram or maximum per
entry (a name it was not given is a ``KeyError``), ``report.model``'s ``Counts``,
``Integrity`` and ``Rates`` have one field per entry and ``report.json`` is keyed by them,
its ``formulas`` are these, ``--prometheus`` exports each (help: the formula), SLO
expressions may name any, and ``chatload compare`` and the headline judge the ones marked so.

Adding a figure is this one entry, plus the line of code that records it (a ``Recorder``
method, or ``counts[name] += n`` where the event is seen) and its line in
``docs/metrics.md``; a rate is computed from its ``ratio`` alone, a count that is neither
a sum nor a maximum names its ``derive``. ``tests/unit/test_layout.py`` checks that every
entry reaches the report model and ``/metrics``. Formulas follow ``docs/metrics.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

#: Where a figure lives in ``report.json``.
Section = Literal["latency_ms", "distributions", "counts", "integrity", "rates"]
#: How a count merges across processes: ``sum`` (a counter), ``max`` (a peak, kept in the
#: snapshot's maxima), or ``derived`` (computed from other counts by ``Figure.derive``).
Merge = Literal["sum", "max", "derived"]
#: A rate's denominator that is the run's duration in seconds, not a count.
DURATION: Final = "duration_s"
#: The statistics of a latency or distribution (an SLO naming none means p50).
STATISTICS: Final = ("count", "min", "mean", "p50", "p90", "p95", "p99", "p999", "max")


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    section: Section
    formula: str = ""
    #: Named by the contract: always in ``report.json``, even when nothing measured it.
    contract: bool = False
    #: ``chatload compare`` judges it: True when lower is better, False when higher is.
    lower_is_better: bool | None = None
    #: The name people use for it (TTFT, E2E, TPOT).
    alias: str | None = None
    #: Distributions: what the stored integers are multiplied by (tokens/s in milli-units).
    scale: int = 1
    #: Counts: how it merges (``Merge``).
    merge: Merge = "sum"
    #: Derived counts: the value from the other counts.
    derive: Callable[[Mapping[str, int]], int] | None = None
    #: Rates: (numerator, denominator), each a count's name or ``DURATION``.
    ratio: tuple[str, str] | None = None


def _latency(name: str, formula: str = "", **kw: object) -> Figure:
    return Figure(name, "latency_ms", formula, **kw)  # type: ignore[arg-type]


def _count(name: str, formula: str = "", **kw: object) -> Figure:
    return Figure(name, "counts", formula, **kw)  # type: ignore[arg-type]


def _rate(name: str, formula: str, ratio: tuple[str, str], **kw: object) -> Figure:
    return Figure(name, "rates", formula, ratio=ratio, **kw)  # type: ignore[arg-type]


FIGURES: Final[tuple[Figure, ...]] = (
    # ---------------------------------------------------------------- latencies (µs kept, ms shown)
    _latency(
        "chat_create_latency",
        "POST create chat written -> response headers (201)",
        contract=True,
        lower_is_better=True,
    ),
    _latency(
        "chat_message_latency",
        "POST message written -> response headers (200)",
        contract=True,
        lower_is_better=True,
    ),
    _latency("chat_message_latency_queued", "chat_message_latency of messages the server queued"),
    _latency(
        "stream_connect_latency",
        "websocket dial start -> upgrade complete",
        contract=True,
        lower_is_better=True,
    ),
    _latency(
        "time_to_running",
        "t0 (or intended start) -> first status running seen: live, or for a turn that began "
        "before its stream opened (a chat's first turn) the connect snapshot that shows it "
        "running (an upper bound)",
        contract=True,
        lower_is_better=True,
    ),
    _latency(
        "time_to_first_output",
        "t0 (or intended start, open loop) -> first live message_part",
        contract=True,
        lower_is_better=True,
        alias="TTFT",
    ),
    _latency(
        "time_to_terminal_status",
        "t0 (or intended start) -> terminal status event",
        contract=True,
        lower_is_better=True,
        alias="E2E",
    ),
    _latency(
        "time_to_first_kept_output",
        "t0 (or intended start) -> first live part of the first episode of the turn whose "
        "parts were committed (era D: parts thrown away by a preview_reset do not count); "
        "TTFT when nothing was thrown away",
        lower_is_better=True,
    ),
    _latency(
        "time_to_action_required",
        "t0 (or intended start) -> the turn's first live action_required (era D: a tool only "
        "the client can run)",
        lower_is_better=True,
    ),
    _latency("tool_results_latency", "POST tool-results written -> response headers (204)"),
    _latency(
        "capacity_wait",
        "t0 (or intended start) -> the watch socket's capacity_change admitting the turn's "
        "chat (only turns the deployment's concurrent-agent gate queued, and only with "
        "watch_sockets_per_user): the root pool, the users' own chats",
        lower_is_better=True,
    ),
    # ---------------------------------------------------------------- agents (protocol §10)
    _latency(
        "step_time_to_first_output",
        "steps 2..n of a turn: the live commit that ended the previous step (the last tool "
        "message, or the assistant message if no tool ran) -> the step's first live part, "
        "any attempt (step 1 is TTFT)",
        lower_is_better=True,
    ),
    _latency(
        "tool_time",
        "the complete tool-call part -> the tool-result part with the same tool_call_id, "
        "both live (by tool name: tool_time_by_name)",
        lower_is_better=True,
    ),
    _latency(
        "subagent_time_to_running",
        "a spawn_agent call's complete part on the parent's stream -> its child first seen "
        "running (the watch's created or status_change, or the followed child's stream); "
        "children paired with their parent's calls in call order",
        lower_is_better=True,
    ),
    _latency(
        "subagent_time_to_first_output",
        "the spawn_agent call's complete part -> the child's first live part (followed "
        "children only: follow_subagents)",
        lower_is_better=True,
    ),
    _latency(
        "subagent_duration",
        "the child first seen running -> its terminal status on its own stream (followed "
        "children only)",
    ),
    _latency(
        "capacity_wait_subagent",
        "the spawn_agent call's complete part (or the child first seen) -> the watch's "
        "capacity_change admitting the child: the subagent pool (watch_sockets_per_user)",
        lower_is_better=True,
    ),
    _latency(
        "storm_release_spread",
        "storm shape: the start barrier's release -> each chat's first turn starting (its "
        "create sent), the release dated on each load process's clock",
    ),
    _latency(
        "storm_follow_up_spread",
        "storm shape with turn_start_delay: the follow-up barrier's release -> each chat's "
        "second turn starting (its message sent)",
    ),
    # A chat's first turn (Coder's scaletest ``phase="initial"``); the rest are follow-ups.
    *(
        _latency(f"{name}_initial", f"{name} of each chat's first turn (scaletest phase initial)")
        for name in ("time_to_running", "time_to_first_output", "time_to_terminal_status")
    ),
    _latency("time_to_running_uncorrected", "time_to_running from the actual start t0 (open loop)"),
    _latency(
        "time_to_first_output_uncorrected",
        "time_to_first_output from the actual start t0 (open loop)",
    ),
    _latency(
        "time_to_first_kept_output_uncorrected",
        "time_to_first_kept_output from the actual start t0 (open loop)",
    ),
    _latency(
        "time_to_action_required_uncorrected",
        "time_to_action_required from the actual start t0 (open loop)",
    ),
    _latency(
        "time_to_terminal_status_uncorrected",
        "time_to_terminal_status from the actual start t0 (open loop)",
    ),
    _latency(
        "inter_frame_gap",
        "between consecutive frames carrying parts of the same turn",
        contract=True,
    ),
    _latency(
        "inter_part_gap",
        "between consecutive message_part events of a turn (0 within a frame)",
    ),
    _latency(
        "time_per_output_token",
        "(E2E - TTFT) / (output_tokens - 1), turns with output_tokens > 1",
        contract=True,
        lower_is_better=True,
        alias="TPOT",
    ),
    _latency(
        "conversation_duration", "first turn's start -> last turn's terminal status, per chat"
    ),
    _latency("schedule_lag", "t0 - intended start (open loop)", contract=True),
    _latency("queue_wait", "queued message posted -> its user message event (promotion)"),
    _latency("retry_delay", "delay_ms of each retry event"),
    _latency("loop_lag", "how late a 0.1 s sampler greenlet woke: the generator's own lag"),
    _latency(
        "watch_lag",
        "for a chat status change seen on both: watch-socket arrival - chat-stream arrival "
        "(negative when the watch came first; watch_lead holds those, as magnitudes)",
    ),
    _latency("watch_lead", "chat-stream arrival - watch-socket arrival, when the watch was first"),
    _latency(
        "cross_replica_lag",
        "for a status change seen by a chat's driver stream and by a watcher on another "
        "replica: the watcher's arrival - the driver's (negative when the watcher was first; "
        "cross_replica_lead holds those, as magnitudes)",
    ),
    _latency(
        "cross_replica_lead",
        "the driver's arrival - the watcher's, when the watcher on another replica was first",
    ),
    _latency(
        "reconnect_time",
        "a dropped stream -> the first frame on its new socket (the next replica's, when the "
        "run targets several)",
    ),
    # ---------------------------------------------------------------- distributions
    Figure("events_per_frame", "distributions", "events in each data frame", contract=True),
    Figure("frame_bytes", "distributions", "bytes of each data frame", contract=True),
    Figure("parts_per_frame", "distributions", "message_part events in each frame of a turn"),
    Figure("retries_per_turn", "distributions", "retry events of each ended turn", contract=True),
    Figure("output_tokens_per_turn", "distributions", "usage.output_tokens of each turn"),
    Figure(
        "steps_per_turn",
        "distributions",
        "assistant messages (steps whose output was committed) of each completed turn",
    ),
    Figure(
        "tool_calls_per_turn",
        "distributions",
        "tool-call parts of the committed assistant messages of each completed turn",
    ),
    Figure(
        "output_tokens_per_s",
        "distributions",
        "output_tokens / (E2E - TTFT), per turn",
        scale=1000,
    ),
    Figure("decode_time_ns", "distributions", "ns to decode and record one frame (1 in 32)"),
    Figure(
        "replay_duration_ratio",
        "distributions",
        "a replayed turn's t0 -> terminal status / the trace's duration_s of that turn, per "
        "completed turn with a recorded duration (1.2: 20 % slower than recorded)",
        scale=1000,
    ),
    # ---------------------------------------------------------------- counts (merge by sum)
    _count("turns_started", contract=True),
    _count("turns_completed", contract=True),
    _count("turns_failed", contract=True),
    _count("turns_unfinished", "turns still in flight when the stop timeout ended", contract=True),
    _count("turns_interrupted"),
    _count("turns_promoted", "turns ended by the server promoting the next queued message"),
    _count("turns_retried"),
    _count(
        "turns_no_live_output",
        "completed turns with no live output: it came before their stream connected (in the "
        "snapshot, so no TTFT), or there was none",
    ),
    _count("turns_good", "turns within every per-turn SLO"),
    _count("turns_requires_action", "ended turns that stopped at least once for client tools"),
    _count("tool_results_posted", "POST tool-results the users sent (one per action_required)"),
    _count(
        "tool_calls",
        "tool-call parts of committed assistant messages of ended turns (by tool name: "
        "report.json's tool_calls_by_name)",
    ),
    _count("tool_errors", "tool-result parts with is_error of committed tool messages"),
    _count(
        "subagents_spawned",
        "children of this run's chats: a watch created event naming one as parent_chat_id, "
        "or a spawn_agent result (each child once)",
    ),
    _count(
        "subagents_failed",
        "children seen in status error (their watch events or their followed stream)",
    ),
    _count("subagents_followed", "children whose own stream was opened (follow_subagents)"),
    _count("retry_recovered", "turns that retried and still ended in waiting"),
    _count("retry_exhausted", "turns that retried and ended in error"),
    _count("frames", contract=True),
    _count("events", contract=True),
    _count("bytes", contract=True),
    _count("pings", "era A JSON pings, never data", contract=True),
    _count("decode_errors", "frames or fields not of the protocol's shape"),
    _count("snapshot_events", "events of connect snapshots (never output)"),
    _count("orphan_parts", "parts when no turn of ours was in flight"),
    _count("parts"),
    _count("output_tokens"),
    _count("retry_events", contract=True),
    _count("error_events", contract=True),
    _count("queue_updates"),
    _count("preview_resets", "live era-D preview_reset events (not the one in each snapshot)"),
    _count(
        "parts_discarded",
        "live parts of episodes that a preview_reset ended before any commit",
    ),
    _count(
        "message_updates",
        "messages re-sent live with the same id and different content (updates; an "
        "identical copy is a duplicate, not counted: the wire has no revision)",
    ),
    _count(
        "watch_events",
        "events on /chats/watch sockets, all kinds (by kind: report.json's watch section)",
    ),
    _count("watch_sockets_opened"),
    _count("queued_messages", contract=True),
    _count("queue_full", "429s with Coder's 'Message queue is full.'"),
    _count("rate_limited", "429s of the per-user rate limit"),
    _count("http_requests", "every REST call"),
    _count("http_errors", "REST calls that failed"),
    _count(
        "http_connection_errors",
        "REST calls that got no answer (refused, reset: the client's side)",
    ),
    _count("streams_opened"),
    _count("stream_reconnects"),
    _count(
        "failover_loss",
        "committed messages of a chat whose stream dropped that its driver's sockets never "
        "received (the history, read once the chat ends, against what came)",
    ),
    _count(
        "reconnects",
        "dropped streams that came back on a new socket (by cause: report.json's "
        "reconnects_by_cause)",
    ),
    _count("streams_closed_abnormally", "streams that ended with a close code but 1000/1001"),
    _count("streams_era_a", "streams whose first frame was an era-A envelope"),
    _count("streams_era_b", "streams whose first frame was a bare array"),
    _count("max_queue_length", "the longest queue a queue_update showed", merge="max"),
    _count(
        "turns_lost",
        "turns_started - turns_completed - turns_failed - turns_unfinished: turns a lost "
        "worker had in flight",
        merge="derived",
        derive=lambda c: max(
            0,
            c["turns_started"] - c["turns_completed"] - c["turns_failed"] - c["turns_unfinished"],
        ),
    ),
    # ---------------------------------------------------------------- integrity (sums)
    Figure(
        "turns_checked",
        "integrity",
        "ended turns with at least one step whose text was compared with its commit, or one "
        "era-D part whose seq was checked",
        contract=True,
    ),
    Figure(
        "seq_gaps",
        "integrity",
        "era-D parts never received: seq values skipped within an episode (or a connection)",
        contract=True,
    ),
    Figure(
        "seq_duplicates",
        "integrity",
        "era-D parts received again with a seq already seen in their episode",
        contract=True,
    ),
    Figure(
        "seq_out_of_order",
        "integrity",
        "era-D parts that came after a higher seq of their episode (or of a later episode)",
        contract=True,
    ),
    Figure(
        "content_mismatches",
        "integrity",
        "steps whose live text and reasoning deltas, concatenated in order (era-D duplicates "
        "dropped), differ in length or CRC-32 from the text and reasoning of the committed "
        "message that closes them",
        contract=True,
    ),
    # ---------------------------------------------------------------- rates
    _rate("frames_per_s", "frames / run duration", ("frames", DURATION)),
    _rate(
        "events_per_s",
        "events / run duration",
        ("events", DURATION),
        contract=True,
        lower_is_better=False,
    ),
    _rate("bytes_per_s", "bytes / run duration", ("bytes", DURATION)),
    _rate(
        "turns_per_s",
        "turns_completed / run duration",
        ("turns_completed", DURATION),
        contract=True,
        lower_is_better=False,
    ),
    _rate(
        "error_rate",
        "turns that ended in any failure / turns started",
        ("turns_failed", "turns_started"),
        contract=True,
        lower_is_better=True,
    ),
    _rate(
        "retry_rate",
        "turns with at least one retry / turns started",
        ("turns_retried", "turns_started"),
        contract=True,
        lower_is_better=True,
    ),
    _rate(
        "goodput_per_s",
        "turns that met every per-turn SLO / run duration",
        ("turns_good", DURATION),
        contract=True,
        lower_is_better=False,
    ),
)

BY_NAME: Final = {figure.name: figure for figure in FIGURES}


def names(section: Section) -> tuple[str, ...]:
    return tuple(f.name for f in FIGURES if f.section == section)


LATENCIES: Final = names("latency_ms")
DISTRIBUTIONS: Final[dict[str, int]] = {
    f.name: f.scale for f in FIGURES if f.section == "distributions"
}
#: Counters the recorder adds to: the counts that merge by sum, and the integrity totals.
RECORDED_COUNTS: Final = tuple(
    f.name for f in FIGURES if f.section == "counts" and f.merge == "sum"
) + names("integrity")
INTEGRITY: Final = names("integrity")
#: The integrity figures that count breaks (``turns_checked`` counts turns).
INTEGRITY_BREAKS: Final = tuple(name for name in INTEGRITY if name != "turns_checked")
RATES: Final = names("rates")
#: Gauges that merge by maximum: the counts that do, and the generator's own.
MAXIMA: Final = (
    *(f.name for f in FIGURES if f.merge == "max"),
    "cpu_permille_max",
    "replay_last_start_ms",
)
#: Levels now (not totals): the latest sample per process, summed across processes.
LEVELS: Final = ("open_streams",)
#: Per-turn latencies also kept for each chat's first turn alone, under ``<name>_initial``.
INITIAL_LATENCIES: Final = ("time_to_running", "time_to_first_output", "time_to_terminal_status")
#: Latencies also kept per second, for percentiles over time.
SERIES_LATENCIES: Final = ("time_to_first_output", "time_to_terminal_status")
#: Latencies a single turn can meet or miss: their SLOs define goodput.
PER_TURN: Final = frozenset(
    {
        "time_to_running",
        "time_to_first_output",
        "time_to_first_kept_output",
        "time_to_terminal_status",
        "time_per_output_token",
    }
)
#: Figures ``chatload compare`` judges, in the order printed: percentiles of its latencies,
#: then its rates.
COMPARED: Final[tuple[tuple[str, bool], ...]] = (
    *(
        (f"{f.name}.{p}", bool(f.lower_is_better))
        for f in FIGURES
        if f.section == "latency_ms" and f.lower_is_better is not None
        for p in ("p50", "p95", "p99")
    ),
    *(
        (f.name, f.lower_is_better)
        for f in FIGURES
        if f.section == "rates" and f.lower_is_better is not None
    ),
)
FORMULAS: Final = {f.name: f.formula for f in FIGURES if f.formula}
ALIASES: Final = {f.name: f.alias for f in FIGURES if f.alias}


def slo_paths() -> list[str]:
    """Every figure an SLO may bound, spelled as an SLO spells it."""
    stats = [
        f"{f.name}.{stat}"
        for f in FIGURES
        if f.section in ("latency_ms", "distributions")
        for stat in STATISTICS
    ]
    return [
        *stats,
        *(f.name for f in FIGURES if f.section in ("counts", "integrity", "rates")),
    ]


#: Counts broken down by a label travel in a snapshot's counts as ``prefix + label``:
#: prefix -> (the figure they break down, the label's name). They sum to the figure.
WATCH_EVENTS_PREFIX: Final = "watch_events:"
RECONNECTS_PREFIX: Final = "reconnects:"
#: ``retry`` events by the classified error's kind (``overloaded``, ``rate_limit``, ...; era D
#: and late C send it, protocol §8.6); ``unknown`` where the event has none.
RETRIES_PREFIX: Final = "retries:"
TOOL_CALLS_PREFIX: Final = "tool_calls:"
BREAKDOWNS: Final[dict[str, tuple[str, str]]] = {
    WATCH_EVENTS_PREFIX: ("watch_events", "kind"),
    RECONNECTS_PREFIX: ("reconnects", "cause"),
    RETRIES_PREFIX: ("retry_events", "kind"),
    TOOL_CALLS_PREFIX: ("tool_calls", "tool"),
}
#: Tool times by tool name travel in latencies under this prefix (they make ``tool_time``).
TOOL_TIME_PREFIX: Final = "tool_time:"
#: Per-replica figures travel in counts and latencies as ``replica.<index>.<figure>``.
REPLICA_PREFIX: Final = "replica."
#: A replayed trace's counts (``chats_planned``, ``chats_started``, ``chats_ended``,
#: ``turns_planned``) travel in counts under this prefix.
REPLAY_PREFIX: Final = "replay:"
#: Every prefix a snapshot's count may carry besides the count figures' own names.
COUNT_PREFIXES: Final = (*BREAKDOWNS, REPLICA_PREFIX, REPLAY_PREFIX)


def undeclared_counts(counts: Mapping[str, int]) -> list[str]:
    """The names in ``counts`` that are neither a count figure nor under a declared prefix."""
    return [
        name
        for name in counts
        if name not in BY_NAME or BY_NAME[name].section not in ("counts", "integrity")
        if not name.startswith(COUNT_PREFIXES)
    ]


def count_values(counts: Mapping[str, int], maxima: Mapping[str, int]) -> dict[str, int]:
    """Every count and integrity figure's value from a snapshot's counts and maxima, by
    name: sums and maxima as kept, derived counts computed from them."""
    values = {
        f.name: int((maxima if f.merge == "max" else counts).get(f.name, 0))
        for f in FIGURES
        if f.section in ("counts", "integrity") and f.merge != "derived"
    }
    for f in FIGURES:
        if f.derive is not None:
            values[f.name] = f.derive(values)
    return values


def rate_values(counts: Mapping[str, int], duration_s: float) -> dict[str, float]:
    """Every rate figure from the count figures' values and the run's duration."""
    rates = {}
    for f in FIGURES:
        if f.ratio is None:
            continue
        top, bottom = f.ratio
        if bottom == DURATION:
            rates[f.name] = counts[top] / max(duration_s, 1e-9)
        else:
            rates[f.name] = counts[top] / counts[bottom] if counts[bottom] else 0.0
    return rates
