"""What a deployment's own Prometheus metrics say of a run: two scrapes in, their deltas out.

Pure: the adapter (``client/server_metrics.py``) fetches and parses; this module takes the
samples of a scrape at the start and one at the end and computes what happened between them:
histograms as count, sum, mean and quantiles estimated from the bucket deltas (linear
interpolation within a bucket, as Prometheus' ``histogram_quantile`` does), counters as
increases by label, gauges as their start, end and the larger of the two. A series that went
down between the scrapes was reset (a restarted replica): its end value is the increase, as
Prometheus' ``increase()`` takes it.

The names, labels and types are Coder's, written once in ``protocol/chatd_metrics.py``
(with the Coder files they come from; docs/report-contract.md, "server_metrics"): the stage
histogram ``coderd_chatd_stage_duration_seconds{stage,scope,chat_kind}`` (every stage that
comes is read: which stages Coder observes changes between versions), the per-model
``coderd_chatd_model_stage_duration_seconds{stage,provider_type,chat_kind,model}`` and
``coderd_chatd_stage_anomalies_total{reason}`` (those three only with Coder's
``chat-stage-metrics`` experiment), ``coderd_chatd_ttft_seconds{provider,model}``,
``coderd_chatd_stream_retries_total{provider,model,kind}``, the capacity gauges
``coderd_chatd_agents_active{pool}`` and ``coderd_chatd_agents_queued_for_capacity{pool}``
(every replica reports the deployment-wide value, so replicas aggregate with max) and the
histogram ``coderd_chatd_agent_capacity_wait_seconds``, and the pubsub counters
``coder_pubsub_publishes_total{backend,success}`` and ``coder_pubsub_messages_total{backend,
size}`` (size ``colossal`` from 7600 bytes, counted on receipt; versions before the shared
metrics had no ``backend`` label, and the first NATS pubsub used ``coder_nats_pubsub_*``, read
too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final

from loadtest.protocol import chatd_metrics as names

#: One sample's labels, sorted: a hashable series key.
Labels = tuple[tuple[str, str], ...]
#: A scrape's samples: sample name (``x_bucket``, ``x_total``, ...) -> series -> value.
Samples = dict[str, dict[Labels, float]]

STAGES: Final = names.STAGE_DURATION
MODEL_STAGES: Final = names.MODEL_STAGE_DURATION
ANOMALIES: Final = names.STAGE_ANOMALIES_TOTAL
TTFT: Final = names.TTFT
RETRIES: Final = names.STREAM_RETRIES_TOTAL
AGENTS_ACTIVE: Final = names.AGENTS_ACTIVE
AGENTS_QUEUED: Final = names.AGENTS_QUEUED
CAPACITY_WAIT: Final = names.CAPACITY_WAIT
PUBLISHES: Final = (names.PUBSUB_PUBLISHES + "_total", names.NATS_PUBSUB_PUBLISHES + "_total")
MESSAGES: Final = (names.PUBSUB_MESSAGES + "_total", names.NATS_PUBSUB_MESSAGES + "_total")
#: The families the report reads, by the name a missing one is listed under.
WANTED: Final = (
    STAGES,
    MODEL_STAGES,
    ANOMALIES,
    TTFT,
    RETRIES,
    AGENTS_ACTIVE,
    AGENTS_QUEUED,
    CAPACITY_WAIT,
    PUBLISHES[0],
    MESSAGES[0],
)
QUANTILES: Final = (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99))


def labels_of(mapping: dict[str, str]) -> Labels:
    return tuple(sorted(mapping.items()))


@dataclass(frozen=True)
class Scrape:
    """One endpoint's samples at one moment, or why there are none."""

    url: str
    samples: Samples = field(default_factory=dict)
    error: str | None = None


@dataclass
class HistogramDelta:
    """Observations between two scrapes: count, sum (s) and cumulative buckets (le -> n)."""

    count: float = 0.0
    sum: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)

    def add(self, other: HistogramDelta) -> None:
        self.count += other.count
        self.sum += other.sum
        for bound, n in other.buckets.items():
            self.buckets[bound] = self.buckets.get(bound, 0.0) + n

    def summary(self) -> dict[str, Any]:
        """``count``, ``sum_s``, ``mean_ms`` and the estimated ``p50_ms``/``p95_ms``/``p99_ms``."""
        out: dict[str, Any] = {
            "count": round(self.count),
            "sum_s": self.sum,
            "mean_ms": self.sum / self.count * 1000 if self.count else None,
        }
        for key, q in QUANTILES:
            value = bucket_quantile(q, self.buckets)
            out[key] = None if value is None else value * 1000
        return out


def bucket_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The ``q`` quantile of cumulative ``buckets`` (upper bound -> count), as Prometheus'
    ``histogram_quantile`` estimates it (promql/quantile.go, ``bucketQuantile``): linear within
    the bucket holding the rank; the highest finite bound when the rank is in ``+Inf``. None
    without observations or without a ``+Inf`` bucket."""
    bounds = sorted(buckets)
    if len(bounds) < 2 or bounds[-1] != math.inf:
        return None
    counts: list[float] = []
    for bound in bounds:  # tolerate a non-monotonic scrape, as Prometheus does
        counts.append(max(buckets[bound], counts[-1] if counts else 0.0))
    total = counts[-1]
    if total <= 0:
        return None
    rank = q * total
    index = next((i for i in range(len(bounds) - 1) if counts[i] >= rank), len(bounds) - 1)
    if index == len(bounds) - 1:
        return bounds[-2]
    if index == 0 and bounds[0] <= 0:
        return bounds[0]
    start, count = 0.0, counts[index]
    if index > 0:
        start = bounds[index - 1]
        count -= counts[index - 1]
        rank -= counts[index - 1]
    if count <= 0:
        return bounds[index]
    return start + (bounds[index] - start) * (rank / count)


def _without(labels: Labels, *names: str) -> Labels:
    return tuple(item for item in labels if item[0] not in names)


def _increase(start: float | None, end: float) -> float:
    """A counter's increase; a lower end value means a reset, so all of it is new."""
    if start is None or end < start:
        return end
    return end - start


def histogram_deltas(start: Samples, end: Samples, name: str) -> dict[Labels, HistogramDelta]:
    """Each series of histogram ``name`` (by its labels, ``le`` aside): what it gained."""
    out: dict[Labels, HistogramDelta] = {}
    ends, starts = end.get(f"{name}_count", {}), start.get(f"{name}_count", {})
    sums_end, sums_start = end.get(f"{name}_sum", {}), start.get(f"{name}_sum", {})
    for series, count in ends.items():
        before = starts.get(series)
        reset = before is not None and count < before
        delta = HistogramDelta(
            count=_increase(None if reset else before, count),
            sum=sums_end.get(series, 0.0) - (0.0 if reset else sums_start.get(series, 0.0)),
        )
        out[series] = delta
    bucket_start = start.get(f"{name}_bucket", {})
    for labels, value in end.get(f"{name}_bucket", {}).items():
        le = dict(labels).get("le")
        series = _without(labels, "le")
        gained = out.get(series)
        if le is None or gained is None:
            continue
        before = starts.get(series)
        reset = before is not None and ends[series] < before
        bound = math.inf if le in ("+Inf", "Inf") else float(le)
        gained.buckets[bound] = value - (0.0 if reset else bucket_start.get(labels, 0.0))
    return out


def counter_deltas(start: Samples, end: Samples, name: str) -> dict[Labels, float]:
    """Each series of counter sample ``name``: its increase."""
    before = start.get(name, {})
    return {series: _increase(before.get(series), v) for series, v in end.get(name, {}).items()}


def gauge_total(samples: Samples, name: str) -> float | None:
    """A gauge summed over its series (e.g. both pools), or None when it is absent."""
    series = samples.get(name)
    return sum(series.values()) if series else None


@dataclass
class _Totals:
    """Deltas summed over endpoints (each endpoint's own start to its own end)."""

    stages: dict[str, HistogramDelta] = field(default_factory=dict)
    background: dict[str, HistogramDelta] = field(default_factory=dict)
    #: stage -> model -> its observations (over provider types and chat kinds).
    model_stages: dict[str, dict[str, HistogramDelta]] = field(default_factory=dict)
    anomalies: dict[str, float] | None = None
    capacity_wait: HistogramDelta | None = None
    ttft: HistogramDelta | None = None
    retries: dict[str, float] | None = None
    publishes: float | None = None
    colossal: float | None = None
    gauges: dict[str, list[float]] = field(default_factory=dict)

    def add(self, start: Samples, end: Samples) -> None:
        for labels, delta in histogram_deltas(start, end, STAGES).items():
            scoped = dict(labels)
            into = self.background if scoped.get("scope") == names.SCOPE_BACKGROUND else self.stages
            into.setdefault(scoped.get("stage", ""), HistogramDelta()).add(delta)
        for labels, delta in histogram_deltas(start, end, MODEL_STAGES).items():
            named = dict(labels)
            by_model = self.model_stages.setdefault(named.get("stage", ""), {})
            by_model.setdefault(named.get("model", ""), HistogramDelta()).add(delta)
        if ANOMALIES in end:
            self.anomalies = self.anomalies or {}
            for labels, n in counter_deltas(start, end, ANOMALIES).items():
                reason = dict(labels).get("reason", "")
                self.anomalies[reason] = self.anomalies.get(reason, 0.0) + n
        if f"{CAPACITY_WAIT}_count" in end:
            self.capacity_wait = self.capacity_wait or HistogramDelta()
            for delta in histogram_deltas(start, end, CAPACITY_WAIT).values():
                self.capacity_wait.add(delta)
        if f"{TTFT}_count" in end:
            self.ttft = self.ttft or HistogramDelta()
            for delta in histogram_deltas(start, end, TTFT).values():
                self.ttft.add(delta)
        if RETRIES in end:
            self.retries = self.retries or {}
            for labels, n in counter_deltas(start, end, RETRIES).items():
                kind = dict(labels).get("kind", "")
                self.retries[kind] = self.retries.get(kind, 0.0) + n
        for name in PUBLISHES:
            for labels, n in counter_deltas(start, end, name).items():
                if dict(labels).get("success", "true") == "true":
                    self.publishes = (self.publishes or 0.0) + n
        for name in MESSAGES:
            if name in end:
                self.colossal = self.colossal or 0.0
            for labels, n in counter_deltas(start, end, name).items():
                if dict(labels).get("size") == "colossal":
                    self.colossal = (self.colossal or 0.0) + n
        for name in (AGENTS_ACTIVE, AGENTS_QUEUED):
            first, last = gauge_total(start, name), gauge_total(end, name)
            if first is None and last is None:
                continue
            # Every replica reports the deployment-wide value: the largest stands for all.
            seen = self.gauges.setdefault(name, [0.0, 0.0])
            seen[0] = max(seen[0], first or 0.0)
            seen[1] = max(seen[1], last or 0.0)


def _gauge(values: list[float] | None) -> dict[str, float] | None:
    if values is None:
        return None
    return {"start": values[0], "end": values[1], "max": max(values)}


def _whole(n: float | None) -> int | None:
    return None if n is None else round(n)


def server_figures(start: list[Scrape], end: list[Scrape]) -> dict[str, Any]:
    """The ``server_metrics`` figures of endpoints scraped at ``start`` and at ``end`` (same
    order): stages, ttft, retries, agents, pubsub, the families ``missing`` from every end
    scrape, and ``error`` naming each endpoint that could not be read (its figures left out)."""
    totals = _Totals()
    errors: list[str] = []
    present: set[str] = set()
    for first, last in zip(start, end, strict=True):
        failed = [f"{when}: {s.error}" for when, s in (("start", first), ("end", last)) if s.error]
        if failed:
            errors.append(f"{last.url}: {'; '.join(failed)}")
            continue
        totals.add(first.samples, last.samples)
        present.update(_families(last.samples))
    ttft = totals.ttft.summary() if totals.ttft is not None else None
    waits = totals.capacity_wait
    return {
        "stages": {name: d.summary() for name, d in sorted(totals.stages.items())},
        "background_stages": {name: d.summary() for name, d in sorted(totals.background.items())},
        "model_stages": {
            stage: {model: d.summary() for model, d in sorted(by_model.items())}
            for stage, by_model in sorted(totals.model_stages.items())
        },
        "stage_anomalies": None
        if totals.anomalies is None
        else {reason: _whole(n) for reason, n in sorted(totals.anomalies.items())},
        "capacity_wait": None if waits is None else waits.summary(),
        "ttft": ttft,
        "retries": None
        if totals.retries is None
        else {kind: _whole(n) for kind, n in sorted(totals.retries.items())},
        "agents": {
            "active": _gauge(totals.gauges.get(AGENTS_ACTIVE)),
            "queued_for_capacity": _gauge(totals.gauges.get(AGENTS_QUEUED)),
        },
        "pubsub": {"publishes": _whole(totals.publishes), "colossal": _whole(totals.colossal)},
        # With every endpoint unreadable, nothing is known to be missing.
        "missing": [name for name in WANTED if name not in present]
        if present or not errors
        else [],
        "error": "; ".join(errors) or None,
    }


def _families(samples: Samples) -> set[str]:
    """The metric families a scrape holds, by the names ``WANTED`` uses."""
    found = set()
    for name in samples:
        for suffix in ("_bucket", "_count", "_sum"):
            if name.endswith(suffix):
                found.add(name.removesuffix(suffix))
        found.add(name)
    for legacy, current in ((PUBLISHES[1], PUBLISHES[0]), (MESSAGES[1], MESSAGES[0])):
        if legacy in found:
            found.add(current)
    return found
