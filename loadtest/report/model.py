"""``report.json`` as a pydantic model (``docs/report-contract.md``), built from a snapshot.

The contract's keys are stable; this module adds figures beside them, never renames.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import orjson
from pydantic import Field

from loadtest import __version__
from loadtest.core.figures import (
    DISTRIBUTIONS,
    FIGURES,
    FORMULAS,
    INITIAL_LATENCIES,
    INTEGRITY_BREAKS,
    LATENCIES,
    SERIES_LATENCIES,
)
from loadtest.core.histogram import Histogram, lowest_equivalent
from loadtest.core.profiles import Storm
from loadtest.core.recorder import (
    RECONNECTS_PREFIX,
    REPLAY_PREFIX,
    REPLICA_PREFIX,
    RETRIES_PREFIX,
    TOOL_CALLS_PREFIX,
    TOOL_TIME_PREFIX,
    WATCH_EVENTS_PREFIX,
)
from loadtest.core.slo import SloResult
from loadtest.core.snapshot import SERIES_COLUMNS, Snapshot
from loadtest.protocol.agents import POOL_ROOT, POOL_SUBAGENT
from loadtest.report.server_metrics import ServerMetrics
from loadtest.report.strict import Strict

SCHEMA_VERSION = 1
#: A generator over this CPU share, or with this much scheduling lag, limited the run.
BOTTLENECK_CPU_PERCENT = 90.0
BOTTLENECK_LAG_MS = 10.0
#: The generator's memory "grows" when, over a run's second half, it rose by more than this
#: share of where the half began and faster than this many MB a minute; runs shorter than
#: MEMORY_WATCH_MIN_S are still warming up and are not judged.
MEMORY_GROWTH_SHARE = 0.10
MEMORY_GROWTH_MB_PER_MIN = 1.0
MEMORY_WATCH_MIN_S = 300.0

#: Entries the contract names: always present (count 0 when nothing was measured).
CONTRACT_LATENCIES = frozenset(f.name for f in FIGURES if f.section == "latency_ms" and f.contract)
CONTRACT_DISTRIBUTIONS = frozenset(
    f.name for f in FIGURES if f.section == "distributions" and f.contract
)

_PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p999", 99.9))


class Summary(Strict):
    count: int
    min: float
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    p999: float
    max: float

    @classmethod
    def of(cls, hist: Histogram, divisor: float) -> Summary:
        def scaled(value: float) -> float:
            return round(value / divisor, 6)

        values = {key: scaled(hist.value_at_percentile(p)) for key, p in _PERCENTILES}
        return cls(
            count=hist.count,
            min=scaled(hist.min),
            mean=scaled(hist.mean()),
            max=scaled(hist.max),
            **values,
        )

    @classmethod
    def signed(cls, negative: Histogram, positive: Histogram, divisor: float) -> Summary:
        """One distribution of values recorded apart by sign (``negative`` as magnitudes):
        percentiles rank the negatives, largest magnitude first, below the positives."""
        n = negative.count + positive.count
        if not n:
            return cls.of(positive, divisor)

        def at(percentile: float) -> float:
            rank = percentile / 100.0 * n
            if rank <= negative.count:
                return -negative.value_at_percentile(100.0 * (1 - rank / negative.count))
            return positive.value_at_percentile(100.0 * (rank - negative.count) / positive.count)

        low = -negative.max if negative.count else positive.min
        high = positive.max if positive.count else -negative.min
        return cls(
            count=n,
            min=round(low / divisor, 6),
            mean=round((positive.total - negative.total) / n / divisor, 6),
            max=round(high / divisor, 6),
            **{key: round(at(p) / divisor, 6) for key, p in _PERCENTILES},
        )


class Watch(Strict):
    """``/chats/watch`` sockets (docs/metrics.md, Watch streams)."""

    sockets_opened: int = 0
    events_by_kind: dict[str, int] = Field(default_factory=dict)


class Tool(Strict):
    name: str = "chatload"
    version: str = __version__


class Load(Strict):
    mode: Literal["closed", "open"]
    users: int | None = None
    arrival_rate: float | None = None


class Target(Strict):
    url: str
    era: Literal["a", "b", "c", "d"]
    server_version: str | None = None
    #: Every replica of the deployment the run targeted (``--host`` given more than once);
    #: empty for one.
    replicas: list[str] = Field(default_factory=list)


class WorkerNode(Strict):
    """A worker process that took part in a distributed run: where it ran."""

    id: str
    hostname: str
    #: Its address as the master saw it (the source address of its connection).
    address: str
    pid: int
    version: str
    #: It sent its final snapshot (else its last periodic one stands in for its figures).
    final: bool


class RunInfo(Strict):
    started_at: datetime
    ended_at: datetime
    duration_s: float
    complete: bool
    scenario: str
    workers: int
    load: Load
    target: Target
    #: Why the run is incomplete (interrupted, a lost worker), when it is.
    incomplete_reasons: list[str] = Field(default_factory=list)
    #: Each worker that joined, and where it ran (empty in a one-process run).
    worker_nodes: list[WorkerNode] = Field(default_factory=list)
    #: The accounts (distinct session tokens) the users were spread over.
    accounts: int | None = None
    #: Workspaces the chats were created in (``[target] workspaces``); 0: none, so an
    #: agent's tools failed.
    workspaces: int = 0
    #: What the reader should know of how the run was set up (a shared account's fan-out).
    warnings: list[str] = Field(default_factory=list)
    #: The run's id, as ``--prometheus`` labels every ``coderd_scaletest_*`` series
    #: (``run_id``); None in reports written before it existed.
    run_id: str | None = None


class Counts(Strict):
    turns_started: int = 0
    turns_completed: int = 0
    turns_failed: int = 0
    turns_unfinished: int = 0
    frames: int = 0
    events: int = 0
    bytes: int = 0
    pings: int = 0
    retry_events: int = 0
    error_events: int = 0
    queued_messages: int = 0
    # Beyond the contract's minimum:
    turns_interrupted: int = 0
    turns_promoted: int = 0
    turns_retried: int = 0
    turns_no_live_output: int = 0
    turns_good: int = 0
    retry_recovered: int = 0
    retry_exhausted: int = 0
    decode_errors: int = 0
    snapshot_events: int = 0
    orphan_parts: int = 0
    parts: int = 0
    output_tokens: int = 0
    queue_updates: int = 0
    preview_resets: int = 0
    parts_discarded: int = 0
    message_updates: int = 0
    watch_events: int = 0
    watch_sockets_opened: int = 0
    turns_requires_action: int = 0
    tool_results_posted: int = 0
    queue_full: int = 0
    rate_limited: int = 0
    http_requests: int = 0
    http_errors: int = 0
    http_connection_errors: int = 0
    streams_opened: int = 0
    stream_reconnects: int = 0
    #: Dropped streams back on a new socket (by cause: ``Report.reconnects_by_cause``).
    reconnects: int = 0
    #: Committed messages of chats whose stream dropped that no socket of theirs received.
    failover_loss: int = 0
    streams_closed_abnormally: int = 0
    streams_era_a: int = 0
    streams_era_b: int = 0
    max_queue_length: int = 0
    #: Turns a lost worker had started whose end no report reached: started - completed -
    #: failed - unfinished (0 in a complete run).
    turns_lost: int = 0
    # Agents (docs/metrics.md, "Agent steps, tools and sub-agents"):
    tool_calls: int = 0
    tool_errors: int = 0
    subagents_spawned: int = 0
    subagents_failed: int = 0
    subagents_followed: int = 0


class Integrity(Strict):
    """Stream integrity totals (docs/metrics.md): what the server lost, repeated or
    reordered."""

    turns_checked: int = 0
    seq_gaps: int = 0
    seq_duplicates: int = 0
    seq_out_of_order: int = 0
    content_mismatches: int = 0

    @property
    def errors(self) -> int:
        return (
            self.seq_gaps + self.seq_duplicates + self.seq_out_of_order + (self.content_mismatches)
        )


class Rates(Strict):
    frames_per_s: float
    events_per_s: float
    bytes_per_s: float
    turns_per_s: float
    error_rate: float
    retry_rate: float
    goodput_per_s: float


class ErrorRow(Strict):
    stage: str
    kind: str | None
    provider: str | None
    status_code: int | None
    retryable: bool | None
    count: int
    message: str


class SeriesPoint(Strict):
    t: float
    active_streams: int
    #: The load processes' resident memory together (MB); None where none was sampled.
    generator_memory_mb: float | None = None
    frames_per_s: float
    events_per_s: float
    turns_completed: int
    errors: int
    retries: int
    bytes_per_s: float = 0.0
    turns_started: int = 0
    time_to_first_output_p50: float | None = None
    time_to_first_output_p95: float | None = None
    time_to_terminal_status_p50: float | None = None
    time_to_terminal_status_p95: float | None = None


class Generator(Strict):
    cpu_percent_max: float = 0.0
    loop_lag_ms_p99: float = 0.0
    bottleneck: bool = False
    warnings: list[str] = Field(default_factory=list)
    #: The load processes' resident memory together (MB): the first second sampled, the
    #: largest, the last; and its least-squares slope over the run's second half (MB per
    #: minute), where a leak shows once start-up allocations are done.
    memory_mb_start: float | None = None
    memory_mb_peak: float | None = None
    memory_mb_end: float | None = None
    memory_growth_mb_per_min: float | None = None


#: Distributions whose buckets the report carries, for plots: name -> divisor to its unit.
PLOTTED = {
    "time_to_first_output": 1000.0,
    "time_to_terminal_status": 1000.0,
    "events_per_frame": 1.0,
}
PLOT_BINS = 40


def buckets(hist: Histogram, divisor: float, bins: int = PLOT_BINS) -> list[list[float]]:
    """``[[upper bound, count], ...]``: ``bins`` equal value ranges from min to max (empty
    ranges included, so a plot's x axis is linear). When the values span no more than
    ``bins`` integers, each integer is its own bucket, labelled with itself."""
    if not hist.count:
        return []
    low, high = hist.min, hist.max
    if high - low < bins:
        exact = dict.fromkeys(range(low, high + 1), 0)
        for index, n in hist.counts.items():
            value = min(max(lowest_equivalent(index), low), high)
            exact[value] += n
        return [[value / divisor, n] for value, n in exact.items()]
    width = (high - low) / bins
    counts = [0] * bins
    for index, n in hist.counts.items():
        value = min(max(lowest_equivalent(index), low), high)
        counts[min(int((value - low) / width), bins - 1)] += n
    return [[(low + width * (i + 1)) / divisor, n] for i, n in enumerate(counts)]


class Replica(Strict):
    """One target replica's share of the streams (docs/metrics.md, "Replicas")."""

    url: str
    streams: int = 0
    frames: int = 0
    events: int = 0
    errors: int = 0
    time_to_first_output: Summary
    #: Integrity breaks seen on its streams (seq_gaps, seq_duplicates, seq_out_of_order,
    #: content_mismatches): a relay's losses show on the replica that relayed.
    integrity: dict[str, int] = Field(default_factory=dict)


class Segment(Strict):
    """One bar of a turn's timeline: ``wait`` (a step's start -> its first part),
    ``stream`` (-> its commit) or ``tool`` (the call -> its result); ms from the turn's t0."""

    kind: Literal["wait", "stream", "tool"]
    label: str
    start_ms: float
    end_ms: float


class TypicalTurn(Strict):
    """A completed turn at (or nearest) the run's median time to terminal status, step by
    step: what a turn of this run looked like."""

    duration_ms: float
    steps: int
    segments: list[Segment]


def typical_turn(snapshot: Snapshot) -> TypicalTurn | None:
    """The kept timeline whose duration is nearest the median ``time_to_terminal_status``."""
    kept = list(snapshot.timelines.values())
    if not kept:
        return None
    e2e = snapshot.histogram("time_to_terminal_status")
    median = (
        e2e.value_at_percentile(50.0) if e2e.count else sorted(k[0] for k in kept)[len(kept) // 2]
    )
    duration, steps, segments = min(kept, key=lambda k: (abs(k[0] - median), k[0]))
    return TypicalTurn(
        duration_ms=duration / 1000,
        steps=steps,
        segments=[
            Segment(kind=kind, label=label, start_ms=start / 1000, end_ms=end / 1000)
            for kind, label, start, end in segments
            if kind in ("wait", "stream", "tool")
        ],
    )


class TraceReplay(Strict):
    """``report.json``'s ``trace`` (docs/report-contract.md § Traces): how faithfully a
    trace was replayed."""

    file: str
    speedup: float
    loop: bool = False
    chats_planned: int
    chats_started: int
    turns_planned: int
    turns_completed: int
    #: Actual - planned start of each chat (its first POST against start_s / speedup).
    start_error_ms: Summary
    #: Replayed / recorded turn duration, per completed turn with a recorded duration.
    duration_ratio: dict[str, float]
    #: Chats started / the last one's offset from the replay's start: the arrival rate.
    arrivals_per_s: float | None = None


def replay_section(
    snapshot: Snapshot, file: str, speedup: float, loop: bool, chats_in_trace: int
) -> TraceReplay:
    """The ``trace`` section from a replay's snapshot; ``chats_in_trace``: one pass's."""
    replay = snapshot.counts_under(REPLAY_PREFIX)
    ratio = snapshot.histogram("replay_duration_ratio")
    started = replay.get("chats_started", 0)
    last_start_s = snapshot.maxima.get("replay_last_start_ms", 0) / 1000
    return TraceReplay(
        file=file,
        speedup=speedup,
        loop=loop,
        chats_planned=replay.get("chats_planned", chats_in_trace),
        chats_started=started,
        turns_planned=replay.get("turns_planned", 0),
        turns_completed=snapshot.count("turns_completed"),
        start_error_ms=Summary.of(snapshot.histogram("schedule_lag"), 1000.0),
        duration_ratio={
            key: round(ratio.value_at_percentile(p) / 1000, 3) if ratio.count else 0.0
            for key, p in (("p50", 50.0), ("p95", 95.0))
        }
        | {"count": float(ratio.count)},
        arrivals_per_s=round(started / last_start_s, 3) if last_start_s > 0 else None,
    )


class Phases(Strict):
    """Each chat's first turn (``initial``: the turn its create carried) apart from the rest
    (``follow_up``), as Coder's scaletest splits its figures by ``phase``: time to running,
    first output and terminal status, and ``message_latency``, the POST that sent the turn's
    message (for a first turn the create, ``chat_create_latency``; for a follow-up the message,
    ``chat_message_latency``)."""

    initial: dict[str, Summary] = Field(default_factory=dict)
    follow_up: dict[str, Summary] = Field(default_factory=dict)


class StormRun(Strict):
    """A storm run (``[load] shape = "storm"``, Coder's ``scaletest chat``): its chats, and
    how close together its barriers started their turns (docs/metrics.md, "Storms")."""

    chats: int
    turns: int
    turn_start_delay_s: float
    #: Each chat's first turn's start less the start barrier's release (count: chats released).
    release_spread_ms: Summary
    #: Each chat's second turn's start less the follow-up barrier's release; None without one.
    follow_up_release_spread_ms: Summary | None = None


class Report(Strict):
    schema_version: int = SCHEMA_VERSION
    tool: Tool = Field(default_factory=Tool)
    run: RunInfo
    latency_ms: dict[str, Summary]
    distributions: dict[str, Summary]
    counts: Counts
    rates: Rates
    errors: list[ErrorRow]
    integrity: Integrity = Field(default_factory=Integrity)
    watch: Watch = Field(default_factory=Watch)
    timeseries: list[SeriesPoint]
    slo: SloResult = Field(default_factory=SloResult)
    generator: Generator = Field(default_factory=Generator)
    #: How each figure is computed, as docs/metrics.md defines it.
    formulas: dict[str, str] = Field(default_factory=dict)
    #: Bucketed distributions for plots: name -> [[upper bound (ms or count), count], ...].
    histograms: dict[str, list[list[float]]] = Field(default_factory=dict)
    #: Per target replica, when the run had several.
    replicas: list[Replica] = Field(default_factory=list)
    #: ``counts.reconnects`` by cause: a close code, or ``error`` (no close frame came).
    reconnects_by_cause: dict[str, int] = Field(default_factory=dict)
    #: ``counts.retry_events`` by the error's kind (protocol §8.6), ``unknown`` without one.
    retries_by_kind: dict[str, int] = Field(default_factory=dict)
    #: What the deployment's own Prometheus metrics said of the run (``--server-metrics``);
    #: None when they were not scraped.
    server_metrics: ServerMetrics | None = None
    #: How faithful a ``--trace`` replay was; None for a run of the scenario's load.
    trace: TraceReplay | None = None
    #: Each chat's first turns apart from its follow-ups (Coder's scaletest ``phase``).
    phases: Phases = Field(default_factory=Phases)
    #: A storm run's chats and release spreads; None for other shapes.
    storm: StormRun | None = None
    #: ``counts.tool_calls`` by tool name, and ``latency_ms.tool_time`` by tool name.
    tool_calls_by_name: dict[str, int] = Field(default_factory=dict)
    tool_time_by_name: dict[str, Summary] = Field(default_factory=dict)
    #: ``capacity_wait`` by the concurrent-agent gate's pool: ``root`` (the users' chats,
    #: ``latency_ms.capacity_wait``) and ``subagent`` (``capacity_wait_subagent``); empty
    #: when neither waited.
    capacity_wait_by_pool: dict[str, Summary] = Field(default_factory=dict)
    #: A completed turn at the median duration, as a timeline of steps and tools.
    typical_turn: TypicalTurn | None = None

    def figure(self, path: str) -> float | None:
        """A figure by its SLO path: ``time_to_first_output.p95``, ``error_rate``, ..."""
        head, _, tail = path.partition(".")
        for section in (self.latency_ms, self.distributions):
            if head in section:
                summary = section[head].model_dump()
                value = summary.get(tail or "p50")
                return None if value is None or not section[head].count else float(value)
        for model in (self.rates, self.counts, self.integrity):
            data = model.model_dump()
            if head in data and not tail:
                return float(data[head])
        return None

    @property
    def agent_run(self) -> bool:
        """Whether its turns were agents' (tool calls, sub-agents, or several steps)."""
        steps = self.distributions.get("steps_per_turn")
        counts = self.counts
        return bool(
            counts.tool_calls or counts.subagents_spawned or (steps is not None and steps.max > 1)
        )

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_INDENT_2)


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def build_report(
    snapshot: Snapshot,
    run: RunInfo,
    slo: SloResult | None = None,
    origin_epoch_s: float | None = None,
) -> Report:
    """The report of a run from its merged snapshot. ``origin_epoch_s`` labels the series."""
    latency = {
        name: Summary.of(snapshot.histogram(name), 1000.0)
        for name in LATENCIES
        if name in CONTRACT_LATENCIES or snapshot.latency.get(name)
    }
    for behind, ahead in (("watch_lag", "watch_lead"), ("cross_replica_lag", "cross_replica_lead")):
        if behind in latency or ahead in latency:
            latency[behind] = Summary.signed(
                snapshot.histogram(ahead), snapshot.histogram(behind), 1000.0
            )
    dists = {
        name: Summary.of(snapshot.histogram(name), float(scale))
        for name, scale in DISTRIBUTIONS.items()
        if name in CONTRACT_DISTRIBUTIONS or snapshot.dist.get(name)
    }
    known = {**snapshot.counts, "max_queue_length": snapshot.maxima.get("max_queue_length", 0)}
    counts = Counts(**{k: v for k, v in known.items() if k in Counts.model_fields})
    counts.turns_lost = max(
        0,
        counts.turns_started
        - counts.turns_completed
        - counts.turns_failed
        - counts.turns_unfinished,
    )
    duration = max(run.duration_s, 1e-9)
    rates = Rates(
        frames_per_s=counts.frames / duration,
        events_per_s=counts.events / duration,
        bytes_per_s=counts.bytes / duration,
        turns_per_s=counts.turns_completed / duration,
        error_rate=_ratio(counts.turns_failed, counts.turns_started),
        retry_rate=_ratio(counts.turns_retried, counts.turns_started),
        goodput_per_s=counts.turns_good / duration,
    )
    errors = sorted(
        (
            ErrorRow(
                stage=row[0],
                kind=row[1],
                provider=row[2],
                status_code=row[3],
                retryable=row[4],
                message=row[5],
                count=row[6],
            )
            for row in snapshot.errors
        ),
        key=lambda e: -e.count,
    )
    origin = run.started_at.timestamp() if origin_epoch_s is None else origin_epoch_s
    series = [_point(int(key), value, origin) for key, value in snapshot.series.items()]
    cpu = snapshot.maxima.get("cpu_permille_max", 0) / 10.0
    lag = snapshot.histogram("loop_lag").value_at_percentile(99.0) / 1000.0
    generator = Generator(cpu_percent_max=cpu, loop_lag_ms_p99=lag)
    if cpu > BOTTLENECK_CPU_PERCENT:
        generator.warnings.append(
            f"a load process used {cpu:.0f}% CPU: the generator, not the target, may have "
            "limited this run; add --workers"
        )
    if lag > BOTTLENECK_LAG_MS:
        generator.warnings.append(
            f"greenlet scheduling lag p99 {lag:.1f} ms: latencies include the generator's delay"
        )
    generator.bottleneck = bool(generator.warnings)
    _memory(generator, sorted(series, key=lambda p: p.t))
    return Report(
        run=run,
        latency_ms=latency,
        distributions=dists,
        counts=counts,
        rates=rates,
        errors=errors,
        integrity=Integrity(**{k: v for k, v in known.items() if k in Integrity.model_fields}),
        watch=Watch(
            sockets_opened=snapshot.count("watch_sockets_opened"),
            events_by_kind=snapshot.counts_under(WATCH_EVENTS_PREFIX),
        ),
        timeseries=sorted(series, key=lambda p: p.t),
        slo=slo or SloResult(),
        generator=generator,
        formulas=dict(FORMULAS),
        histograms={
            name: buckets(snapshot.histogram(name), divisor)
            for name, divisor in PLOTTED.items()
            if snapshot.histogram(name).count
        },
        replicas=_replicas(snapshot, run.target.replicas),
        reconnects_by_cause=snapshot.counts_under(RECONNECTS_PREFIX),
        retries_by_kind=snapshot.counts_under(RETRIES_PREFIX),
        tool_calls_by_name=snapshot.counts_under(TOOL_CALLS_PREFIX),
        tool_time_by_name={
            name.removeprefix(TOOL_TIME_PREFIX): Summary.of(Histogram.from_wire(wire), 1000.0)
            for name, wire in sorted(snapshot.latency.items())
            if name.startswith(TOOL_TIME_PREFIX)
        },
        capacity_wait_by_pool={
            pool: Summary.of(snapshot.histogram(name), 1000.0)
            for pool, name in (
                (POOL_ROOT, "capacity_wait"),
                (POOL_SUBAGENT, "capacity_wait_subagent"),
            )
            if snapshot.latency.get("capacity_wait")
            or snapshot.latency.get("capacity_wait_subagent")
        },
        typical_turn=typical_turn(snapshot),
        phases=phases(snapshot),
    )


def phases(snapshot: Snapshot) -> Phases:
    """First turns from ``<name>_initial``; follow-ups as the whole less those, exactly."""
    initial, follow_up = {}, {}
    for name in INITIAL_LATENCIES:
        first = snapshot.histogram(f"{name}_initial")
        initial[name] = Summary.of(first, 1000.0)
        follow_up[name] = Summary.of(snapshot.histogram(name).minus(first), 1000.0)
    initial["message_latency"] = Summary.of(snapshot.histogram("chat_create_latency"), 1000.0)
    follow_up["message_latency"] = Summary.of(snapshot.histogram("chat_message_latency"), 1000.0)
    return Phases(initial=initial, follow_up=follow_up)


def storm_run(snapshot: Snapshot, profile: Storm, turns: int) -> StormRun:
    """What a storm run's report says of its barriers."""
    gated = profile.turn_start_delay > 0 and turns > 1
    return StormRun(
        chats=profile.users,
        turns=turns,
        turn_start_delay_s=profile.turn_start_delay,
        release_spread_ms=Summary.of(snapshot.histogram("storm_release_spread"), 1000.0),
        follow_up_release_spread_ms=Summary.of(snapshot.histogram("storm_follow_up_spread"), 1000.0)
        if gated
        else None,
    )


def growth_per_min(points: list[tuple[float, float]]) -> float | None:
    """The least-squares slope of ``(seconds, MB)`` points, in MB per minute; None for
    fewer than three points or no spread in time."""
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if not spread:
        return None
    slope = sum((t - mean_t) * (v - mean_v) for t, v in points) / spread
    return round(slope * 60, 3)


def _memory(generator: Generator, series: list[SeriesPoint]) -> None:
    """Memory at start, peak and end, its second-half slope, and a warning when it grows."""
    sampled = [(p.t, p.generator_memory_mb) for p in series if p.generator_memory_mb]
    if not sampled:
        return
    values = [mb for _, mb in sampled]
    generator.memory_mb_start, generator.memory_mb_end = values[0], values[-1]
    generator.memory_mb_peak = max(values)
    middle = (sampled[0][0] + sampled[-1][0]) / 2
    second_half = [(t, mb) for t, mb in sampled if t >= middle]
    slope = generator.memory_growth_mb_per_min = growth_per_min(second_half)
    span_min = (sampled[-1][0] - middle) / 60
    if slope is None or span_min * 2 < MEMORY_WATCH_MIN_S / 60:
        return
    grown = slope * span_min
    if grown > MEMORY_GROWTH_SHARE * second_half[0][1] and slope > MEMORY_GROWTH_MB_PER_MIN:
        generator.warnings.append(
            f"the generator's memory grew {slope:.1f} MB/min over the run's second half "
            f"({second_half[0][1]:.0f} -> {values[-1]:.0f} MB, peak {max(values):.0f} MB): "
            "a longer run may run it out of memory (see the README's soak section)"
        )


def _replicas(snapshot: Snapshot, urls: list[str]) -> list[Replica]:
    """Each replica's figures, from the snapshot's ``replica.<index>.<figure>`` entries."""
    out = []
    for index, url in enumerate(urls):
        prefix = f"{REPLICA_PREFIX}{index}."
        out.append(
            Replica(
                url=url,
                **{
                    name: snapshot.count(prefix + name)
                    for name in ("streams", "frames", "events", "errors")
                },
                time_to_first_output=Summary.of(
                    snapshot.histogram(prefix + "time_to_first_output"), 1000.0
                ),
                integrity={name: snapshot.count(prefix + name) for name in INTEGRITY_BREAKS},
            )
        )
    return out


def _point(second: int, value: list[object], origin: float) -> SeriesPoint:
    columns, hists = value[0], value[1]
    assert isinstance(columns, list) and isinstance(hists, dict)
    row = dict(zip(SERIES_COLUMNS, columns, strict=True))
    extra: dict[str, float] = {}
    for name in SERIES_LATENCIES:
        wire = hists.get(name)
        if wire:
            hist = Histogram.from_wire(wire)
            extra[f"{name}_p50"] = hist.value_at_percentile(50.0) / 1000.0
            extra[f"{name}_p95"] = hist.value_at_percentile(95.0) / 1000.0
    return SeriesPoint(
        t=round(second - origin, 3),
        active_streams=row["active_streams"],
        frames_per_s=float(row["frames"]),
        events_per_s=float(row["events"]),
        bytes_per_s=float(row["bytes"]),
        turns_started=row["turns_started"],
        turns_completed=row["turns_completed"],
        errors=row["errors"],
        retries=row["retries"],
        generator_memory_mb=round(row["generator_rss_kb"] / 1024, 1) or None,
        **extra,
    )
