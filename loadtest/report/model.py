"""``report.json`` as a pydantic model (``docs/report-contract.md``): its sections' schema
(``build.py`` fills them from a measurement).

The contract's keys are stable; this module adds figures beside them, never renames.
``RunCounts``, ``Integrity`` and ``Rates`` are built from ``core.figures``: one field per figure.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import orjson
from pydantic import ConfigDict, Field, create_model

from loadtest import __version__
from loadtest.core.figures import FIGURES, INTEGRITY_BREAKS, SERIES_LATENCIES
from loadtest.core.histogram import Histogram
from loadtest.core.series import COLUMNS
from loadtest.core.slo import SloResult
from loadtest.report.server_metrics import ServerMetrics
from loadtest.report.strict import Strict

SCHEMA_VERSION = 1


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
    #: It sent its final measurement (else its last periodic one stands in for its figures).
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


def _figure_fields(section: str, kind: type, required: bool = False) -> dict[str, Any]:
    """One field per figure of ``section``, in ``FIGURES`` order (counts: the contract's
    minimum first)."""
    figures = [f for f in FIGURES if f.section == section]
    if section == "counts":
        figures.sort(key=lambda f: not f.contract)
    return {f.name: (kind, ... if required else kind(0)) for f in figures}


class _Counts(Strict):
    """Count figures (``core.figures``, section ``counts``); a count the figures do not
    declare (a newer worker's) is kept, as an extra key, rather than dropped."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, int] = Field(init=False)


class _Integrity(Strict):
    """Stream integrity totals (docs/metrics.md): what the server lost, repeated or
    reordered."""

    @property
    def errors(self) -> int:
        return sum(getattr(self, name) for name in INTEGRITY_BREAKS)


if TYPE_CHECKING:
    # What mypy sees of the models built from the figures below: each figure a number.

    class RunCounts(_Counts):
        def __init__(self, **values: int) -> None: ...
        def __getattr__(self, name: str) -> int: ...

    class Integrity(_Integrity):
        def __init__(self, **values: int) -> None: ...
        def __getattr__(self, name: str) -> int: ...

    class Rates(Strict):
        def __init__(self, **values: float) -> None: ...
        def __getattr__(self, name: str) -> float: ...

else:
    RunCounts = create_model("RunCounts", __base__=_Counts, **_figure_fields("counts", int))
    Integrity = create_model("Integrity", __base__=_Integrity, **_figure_fields("integrity", int))
    Rates = create_model("Rates", __base__=Strict, **_figure_fields("rates", float, True))


class ErrorRow(Strict):
    stage: str
    kind: str | None
    provider: str | None
    status_code: int | None
    retryable: bool | None
    count: int
    message: str


def _series_fields() -> dict[str, Any]:
    """A time-series point's fields: ``t``, each ``core.series`` column, then each series
    latency's p50 and p95 (ms; None in a second without one)."""
    kinds = {"count": int, "per_s": float, "kb_as_mb": float | None}
    defaults = {"count": 0, "per_s": 0.0, "kb_as_mb": None}
    fields: dict[str, Any] = {"t": (float, ...)}
    for column in COLUMNS:
        default = ... if column.contract else defaults[column.unit]
        fields[column.point] = (kinds[column.unit], default)
    for name in SERIES_LATENCIES:
        fields[f"{name}_p50"] = fields[f"{name}_p95"] = (float | None, None)
    return fields


if TYPE_CHECKING:

    class SeriesPoint(Strict):
        t: float
        generator_memory_mb: float | None

        def __init__(self, **values: float | int | None) -> None: ...
        def __getattr__(self, name: str) -> float: ...

else:
    SeriesPoint = create_model("SeriesPoint", __base__=Strict, **_series_fields())


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


class ReplicaRow(Strict):
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
    counts: RunCounts
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
    replicas: list[ReplicaRow] = Field(default_factory=list)
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
