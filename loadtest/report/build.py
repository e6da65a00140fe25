"""Building ``report.json``'s model from a merged measurement: every section's figures, the
generator's health and memory, the time series, phases, a storm's and a replay's sections."""

from __future__ import annotations

from loadtest.core.figures import (
    DISTRIBUTIONS,
    FORMULAS,
    INITIAL_LATENCIES,
    INTEGRITY_BREAKS,
    LATENCIES,
    RECONNECTS_PREFIX,
    REPLAY_PREFIX,
    REPLICA_PREFIX,
    RETRIES_PREFIX,
    SERIES_LATENCIES,
    TOOL_CALLS_PREFIX,
    TOOL_TIME_PREFIX,
    WATCH_EVENTS_PREFIX,
    count_values,
    rate_values,
    undeclared_counts,
)
from loadtest.core.histogram import Histogram, lowest_equivalent
from loadtest.core.measurement import Measurement
from loadtest.core.profiles import Storm
from loadtest.core.replicas import REPLICA_COUNTS
from loadtest.core.series import point_values
from loadtest.core.slo import SloResult
from loadtest.protocol.agents import POOL_ROOT, POOL_SUBAGENT
from loadtest.report.model import (
    CONTRACT_DISTRIBUTIONS,
    CONTRACT_LATENCIES,
    ErrorRow,
    Generator,
    Integrity,
    Phases,
    Rates,
    ReplicaRow,
    Report,
    RunCounts,
    RunInfo,
    Segment,
    SeriesPoint,
    StormRun,
    Summary,
    TraceReplay,
    TypicalTurn,
    Watch,
)

#: A generator over this CPU share, or with this much scheduling lag, limited the run.
BOTTLENECK_CPU_PERCENT = 90.0


BOTTLENECK_LAG_MS = 10.0


#: The generator's memory "grows" when, over a run's second half, it rose by more than this
#: share of where the half began and faster than this many MB a minute; runs shorter than
#: MEMORY_WATCH_MIN_S are still warming up and are not judged.
MEMORY_GROWTH_SHARE = 0.10


MEMORY_GROWTH_MB_PER_MIN = 1.0


MEMORY_WATCH_MIN_S = 300.0


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


def typical_turn(measurement: Measurement) -> TypicalTurn | None:
    """The kept timeline whose duration is nearest the median ``time_to_terminal_status``."""
    kept = list(measurement.timelines.values())
    if not kept:
        return None
    e2e = measurement.histogram("time_to_terminal_status")
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


def replay_section(
    measurement: Measurement, file: str, speedup: float, loop: bool, chats_in_trace: int
) -> TraceReplay:
    """The ``trace`` section from a replay's measurement; ``chats_in_trace``: one pass's."""
    replay = measurement.counts_under(REPLAY_PREFIX)
    ratio = measurement.histogram("replay_duration_ratio")
    started = replay.get("chats_started", 0)
    last_start_s = measurement.maxima.get("replay_last_start_ms", 0) / 1000
    return TraceReplay(
        file=file,
        speedup=speedup,
        loop=loop,
        chats_planned=replay.get("chats_planned", chats_in_trace),
        chats_started=started,
        turns_planned=replay.get("turns_planned", 0),
        turns_completed=measurement.count("turns_completed"),
        start_error_ms=Summary.of(measurement.histogram("schedule_lag"), 1000.0),
        duration_ratio={
            key: round(ratio.value_at_percentile(p) / 1000, 3) if ratio.count else 0.0
            for key, p in (("p50", 50.0), ("p95", 95.0))
        }
        | {"count": float(ratio.count)},
        arrivals_per_s=round(started / last_start_s, 3) if last_start_s > 0 else None,
    )


def build_report(
    measurement: Measurement,
    run: RunInfo,
    slo: SloResult | None = None,
    origin_epoch_s: float | None = None,
) -> Report:
    """The report of a run from its merged measurement. ``origin_epoch_s`` labels the series."""
    latency = {
        name: Summary.of(measurement.histogram(name), 1000.0)
        for name in LATENCIES
        if name in CONTRACT_LATENCIES or measurement.latency.get(name)
    }
    for behind, ahead in (("watch_lag", "watch_lead"), ("cross_replica_lag", "cross_replica_lead")):
        if behind in latency or ahead in latency:
            latency[behind] = Summary.signed(
                measurement.histogram(ahead), measurement.histogram(behind), 1000.0
            )
    dists = {
        name: Summary.of(measurement.histogram(name), float(scale))
        for name, scale in DISTRIBUTIONS.items()
        if name in CONTRACT_DISTRIBUTIONS or measurement.dist.get(name)
    }
    values = count_values(measurement.counts, measurement.maxima)
    # A count no figure declares (a newer worker's) is kept in counts, not dropped.
    extra = {name: measurement.counts[name] for name in undeclared_counts(measurement.counts)}
    counts = RunCounts(**{n: values[n] for n in RunCounts.model_fields}, **extra)
    rates = Rates(**rate_values(values, run.duration_s))
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
            for row in measurement.errors
        ),
        key=lambda e: -e.count,
    )
    origin = run.started_at.timestamp() if origin_epoch_s is None else origin_epoch_s
    series = [_point(int(key), value, origin) for key, value in measurement.series.items()]
    cpu = measurement.maxima.get("cpu_permille_max", 0) / 10.0
    lag = measurement.histogram("loop_lag").value_at_percentile(99.0) / 1000.0
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
        integrity=Integrity(**{name: values[name] for name in Integrity.model_fields}),
        watch=Watch(
            sockets_opened=measurement.count("watch_sockets_opened"),
            events_by_kind=measurement.counts_under(WATCH_EVENTS_PREFIX),
        ),
        timeseries=sorted(series, key=lambda p: p.t),
        slo=slo or SloResult(),
        generator=generator,
        formulas=dict(FORMULAS),
        histograms={
            name: buckets(measurement.histogram(name), divisor)
            for name, divisor in PLOTTED.items()
            if measurement.histogram(name).count
        },
        replicas=_replicas(measurement, run.target.replicas),
        reconnects_by_cause=measurement.counts_under(RECONNECTS_PREFIX),
        retries_by_kind=measurement.counts_under(RETRIES_PREFIX),
        tool_calls_by_name=measurement.counts_under(TOOL_CALLS_PREFIX),
        tool_time_by_name={
            name.removeprefix(TOOL_TIME_PREFIX): Summary.of(Histogram.from_wire(wire), 1000.0)
            for name, wire in sorted(measurement.latency.items())
            if name.startswith(TOOL_TIME_PREFIX)
        },
        capacity_wait_by_pool={
            pool: Summary.of(measurement.histogram(name), 1000.0)
            for pool, name in (
                (POOL_ROOT, "capacity_wait"),
                (POOL_SUBAGENT, "capacity_wait_subagent"),
            )
            if measurement.latency.get("capacity_wait")
            or measurement.latency.get("capacity_wait_subagent")
        },
        typical_turn=typical_turn(measurement),
        phases=phases(measurement),
    )


def phases(measurement: Measurement) -> Phases:
    """First turns from ``<name>_initial``; follow-ups as the whole less those, exactly."""
    initial, follow_up = {}, {}
    for name in INITIAL_LATENCIES:
        first = measurement.histogram(f"{name}_initial")
        initial[name] = Summary.of(first, 1000.0)
        follow_up[name] = Summary.of(measurement.histogram(name).minus(first), 1000.0)
    initial["message_latency"] = Summary.of(measurement.histogram("chat_create_latency"), 1000.0)
    follow_up["message_latency"] = Summary.of(measurement.histogram("chat_message_latency"), 1000.0)
    return Phases(initial=initial, follow_up=follow_up)


def storm_run(measurement: Measurement, profile: Storm, turns: int) -> StormRun:
    """What a storm run's report says of its barriers."""
    gated = profile.turn_start_delay > 0 and turns > 1
    return StormRun(
        chats=profile.users,
        turns=turns,
        turn_start_delay_s=profile.turn_start_delay,
        release_spread_ms=Summary.of(measurement.histogram("storm_release_spread"), 1000.0),
        follow_up_release_spread_ms=Summary.of(
            measurement.histogram("storm_follow_up_spread"), 1000.0
        )
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


def _replicas(measurement: Measurement, urls: list[str]) -> list[ReplicaRow]:
    """Each replica's figures, from the measurement's ``replica.<index>.<figure>`` entries."""
    out = []
    for index, url in enumerate(urls):
        prefix = f"{REPLICA_PREFIX}{index}."
        out.append(
            ReplicaRow(
                url=url,
                **{name: measurement.count(prefix + name) for name in REPLICA_COUNTS},
                time_to_first_output=Summary.of(
                    measurement.histogram(prefix + "time_to_first_output"), 1000.0
                ),
                integrity={name: measurement.count(prefix + name) for name in INTEGRITY_BREAKS},
            )
        )
    return out


def _point(second: int, value: list[object], origin: float) -> SeriesPoint:
    columns, hists = value[0], value[1]
    assert isinstance(columns, list) and isinstance(hists, dict)
    extra: dict[str, float] = {}
    for name in SERIES_LATENCIES:
        wire = hists.get(name)
        if wire:
            hist = Histogram.from_wire(wire)
            extra[f"{name}_p50"] = hist.value_at_percentile(50.0) / 1000.0
            extra[f"{name}_p95"] = hist.value_at_percentile(95.0) / 1000.0
    return SeriesPoint(t=round(second - origin, 3), **point_values(columns), **extra)
