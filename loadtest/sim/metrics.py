"""The simulated chat daemon's ``/metrics``: what its turns really spent, under Coder's names.

The names, labels, types and buckets are Coder's, written once in
``protocol/chatd_metrics.py`` (``core/server_delta.py`` reads them):
``coderd_chatd_stage_duration_seconds{stage,scope,chat_kind}``,
``coderd_chatd_model_stage_duration_seconds{stage,provider_type,chat_kind,model}`` (the
``stream`` stage, whose model is known), ``coderd_chatd_stage_anomalies_total{reason}`` (a
negative duration is dropped and counted, as chatloop's ``recordStageDuration`` does),
``coderd_chatd_ttft_seconds{provider,model}``,
``coderd_chatd_stream_retries_total{provider,model,kind}``,
``coderd_chatd_agents_active{pool}``, ``coderd_chatd_agents_queued_for_capacity{pool}``,
``coderd_chatd_agent_capacity_wait_seconds`` and, as a replica,
``coder_pubsub_publishes_total{backend,success}`` and ``coder_pubsub_messages_total{backend,
size}``. Every observation is also kept as a plain count and sum (``figures``, served on
``/__sim/metrics``), so a test can hold a scrape's deltas against what the simulator itself
measured. Each simulator has its own registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from loadtest.protocol import chatd_metrics as names
from loadtest.protocol.agents import POOL_ROOT, POOLS

#: Stages are observed with chat_kind ``root``, and every one is a turn's (scope ``turn``; no
#: background title calls); the gate's gauges are per pool (root and sub-agent chats).
ROOT: Final = POOL_ROOT
SCOPE: Final = names.SCOPE_TURN


@dataclass
class Live:
    """Figures read at scrape time: the concurrent-agent gate, and a replica's pubsub."""

    agents_active: int = 0
    agents_queued: int = 0
    #: The same by the gate's pool (``root``, ``subagent``); the totals above are their sums.
    by_pool: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: (backend, publishes, colossal) of a replica's pubsub; None for a lone simulator.
    pubsub: tuple[str, int, int] | None = None


class _LiveCollector(Collector):
    def __init__(self, read: Callable[[], Live]) -> None:
        self._read = read

    def collect(self) -> list[Metric]:
        live = self._read()
        out: list[Metric] = []
        pools = live.by_pool or {ROOT: (live.agents_active, live.agents_queued)}
        for name, index, help_text in (
            (names.AGENTS_ACTIVE, 0, "Chats holding an agent slot."),
            (names.AGENTS_QUEUED, 1, "Chats waiting for an agent slot."),
        ):
            gauge = GaugeMetricFamily(name, help_text, labels=["pool"])
            for pool in POOLS:
                gauge.add_metric([pool], pools.get(pool, (0, 0))[index])
            out.append(gauge)
        if live.pubsub is not None:
            backend, published, colossal = live.pubsub
            publishes = CounterMetricFamily(
                names.PUBSUB_PUBLISHES,
                "Total number of calls to Publish",
                labels=["backend", "success"],
            )
            publishes.add_metric([backend, "true"], published)
            # Coder counts colossal messages as they are received; the simulator as it
            # publishes them (each notify reaches every replica once).
            messages = CounterMetricFamily(
                names.PUBSUB_MESSAGES, "Messages by size", labels=["backend", "size"]
            )
            messages.add_metric([backend, "normal"], published - colossal)
            messages.add_metric([backend, "colossal"], colossal)
            out += [publishes, messages]
        return out


class DaemonMetrics:
    """The stage durations, TTFT and retries the player observes, and the live gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._stages = Histogram(
            names.STAGE_DURATION,
            "Wall time spent in each chat lifecycle stage.",
            ["stage", "scope", "chat_kind"],
            buckets=names.STAGE_BUCKETS,
            registry=self.registry,
        )
        self._model_stages = Histogram(
            names.MODEL_STAGE_DURATION,
            "Wall time of the stages that are a provider's work on a model.",
            ["stage", "provider_type", "chat_kind", "model"],
            buckets=names.STAGE_BUCKETS,
            registry=self.registry,
        )
        self._anomalies = Counter(
            names.STAGE_ANOMALIES,
            "Chat lifecycle stage observations dropped or adjusted, by reason.",
            ["reason"],
            registry=self.registry,
        )
        for reason in names.ANOMALY_REASONS:
            self._anomalies.labels(reason)  # every reason served, at 0 until it happens
        self._ttft = Histogram(
            names.TTFT,
            "Time-to-first-token: wall time from LLM request to first streamed chunk.",
            ["provider", "model"],
            buckets=names.TTFT_BUCKETS,
            registry=self.registry,
        )
        self._retries = Counter(
            names.STREAM_RETRIES,
            "Total LLM stream retries.",
            ["provider", "model", "kind"],
            registry=self.registry,
        )
        self._capacity_wait = Histogram(
            names.CAPACITY_WAIT,
            "Time chats spent waiting for a concurrent-agent capacity slot.",
            buckets=names.CAPACITY_WAIT_BUCKETS,
            registry=self.registry,
        )
        #: Read at each scrape (set by the deployment once its player and replica exist).
        self.live: Callable[[], Live] = Live
        self.registry.register(_LiveCollector(lambda: self.live()))
        #: The same observations as plain figures: stage -> [count, sum_s]; ttft; retries.
        self.stages: dict[str, list[float]] = {}
        #: (stage, model) -> [count, sum_s] of the model stages.
        self.model_stages: dict[tuple[str, str], list[float]] = {}
        self.anomalies: dict[str, int] = dict.fromkeys(names.ANOMALY_REASONS, 0)
        self.capacity_waits = [0, 0.0]
        self.ttft = [0, 0.0]
        self.retries: dict[str, int] = {}

    def stage(self, name: str, seconds: float, model: tuple[str, str] | None = None) -> None:
        """One stage's duration; with the ``(provider type, model)`` it ran against, a model
        stage (``stream``) is observed per model too. A negative duration is dropped and
        counted as a ``negative_elapsed`` anomaly, as chatloop does."""
        if seconds < 0:
            self._anomalies.labels("negative_elapsed").inc()
            self.anomalies["negative_elapsed"] += 1
            return
        self._stages.labels(name, SCOPE, ROOT).observe(seconds)
        figures = self.stages.setdefault(name, [0, 0.0])
        figures[0] += 1
        figures[1] += seconds
        if model is not None and name in names.MODEL_STAGES:
            self._model_stages.labels(name, model[0], ROOT, model[1]).observe(seconds)
            tally = self.model_stages.setdefault((name, model[1]), [0, 0.0])
            tally[0] += 1
            tally[1] += seconds

    def capacity_wait(self, seconds: float) -> None:
        """A chat refused an agent slot was admitted after ``seconds``: the capacity_wait
        stage, and ``agent_capacity_wait_seconds``."""
        self.stage("capacity_wait", seconds)
        self._capacity_wait.observe(seconds)
        self.capacity_waits[0] += 1
        self.capacity_waits[1] += seconds

    def first_token(self, seconds: float, provider: str, model: str) -> None:
        """One stream's time to first token: a stage, and ``ttft_seconds`` by model."""
        self.stage("time_to_first_token", seconds)
        self._ttft.labels(provider, model).observe(seconds)
        self.ttft[0] += 1
        self.ttft[1] += seconds

    def retry(self, provider: str, model: str, kind: str) -> None:
        kind = str(kind)  # a StrEnum's value, as a plain key
        self._retries.labels(provider, model, kind).inc()
        self.retries[kind] = self.retries.get(kind, 0) + 1

    def figures(self) -> dict[str, Any]:
        """What ``/__sim/metrics`` answers: every observation so far, and the gauges now."""
        live = self.live()
        return {
            "stages": {
                name: {"count": int(n), "sum_s": total}
                for name, (n, total) in sorted(self.stages.items())
            },
            "model_stages": {
                stage: {
                    model: {"count": int(n), "sum_s": total}
                    for (named, model), (n, total) in sorted(self.model_stages.items())
                    if named == stage
                }
                for stage in sorted({stage for stage, _ in self.model_stages})
            },
            "stage_anomalies": dict(self.anomalies),
            "capacity_wait": {
                "count": int(self.capacity_waits[0]),
                "sum_s": self.capacity_waits[1],
            },
            "ttft": {"count": int(self.ttft[0]), "sum_s": self.ttft[1]},
            "retries": dict(sorted(self.retries.items())),
            "agents": {"active": live.agents_active, "queued_for_capacity": live.agents_queued},
            "pubsub": None
            if live.pubsub is None
            else {
                "backend": live.pubsub[0],
                "publishes": live.pubsub[1],
                "colossal": live.pubsub[2],
            },
        }
