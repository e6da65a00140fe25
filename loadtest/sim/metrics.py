"""The simulated chat daemon's ``/metrics``: what its turns really spent, under Coder's names.

The names, labels, types and buckets are Coder's (coder/coder
coderd/x/chatd/chatloop/metrics.go, chatloop/stage.go, coderd/x/chatd/capacity.go,
coderd/database/pubsub/metrics.go; ``core/server_delta.py`` reads them):
``coderd_chatd_stage_duration_seconds{stage,scope,chat_kind}``,
``coderd_chatd_ttft_seconds{provider,model}``,
``coderd_chatd_stream_retries_total{provider,model,kind}``,
``coderd_chatd_agents_active{pool}``, ``coderd_chatd_agents_queued_for_capacity{pool}`` and,
as a replica, ``coder_pubsub_publishes_total{backend,success}`` and
``coder_pubsub_messages_total{backend,size}``. Every observation is also kept as a plain
count and sum (``figures``, served on ``/__sim/metrics``), so a test can hold a scrape's
deltas against what the simulator itself measured. Each simulator has its own registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: chatloop's ``stageDurationBuckets`` and its ``ttft_seconds`` buckets.
STAGE_BUCKETS: Final = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600)
TTFT_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
#: The simulator's chats are all root chats (no sub-agents: pool and chat_kind ``root``), and
#: every stage it observes is a turn's (scope ``turn``; no background title calls).
ROOT: Final = "root"
SCOPE: Final = "turn"


@dataclass
class Live:
    """Figures read at scrape time: the concurrent-agent gate, and a replica's pubsub."""

    agents_active: int = 0
    agents_queued: int = 0
    #: (backend, publishes, colossal) of a replica's pubsub; None for a lone simulator.
    pubsub: tuple[str, int, int] | None = None


class _LiveCollector(Collector):
    def __init__(self, read: Callable[[], Live]) -> None:
        self._read = read

    def collect(self) -> list[Metric]:
        live = self._read()
        out: list[Metric] = []
        for name, value, help_text in (
            ("coderd_chatd_agents_active", live.agents_active, "Chats holding an agent slot."),
            (
                "coderd_chatd_agents_queued_for_capacity",
                live.agents_queued,
                "Chats waiting for an agent slot.",
            ),
        ):
            gauge = GaugeMetricFamily(name, help_text, labels=["pool"])
            gauge.add_metric([ROOT], value)
            gauge.add_metric(["subagent"], 0)
            out.append(gauge)
        if live.pubsub is not None:
            backend, published, colossal = live.pubsub
            publishes = CounterMetricFamily(
                "coder_pubsub_publishes",
                "Total number of calls to Publish",
                labels=["backend", "success"],
            )
            publishes.add_metric([backend, "true"], published)
            # Coder counts colossal messages as they are received; the simulator as it
            # publishes them (each notify reaches every replica once).
            messages = CounterMetricFamily(
                "coder_pubsub_messages", "Messages by size", labels=["backend", "size"]
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
            "coderd_chatd_stage_duration_seconds",
            "Wall time spent in each chat lifecycle stage.",
            ["stage", "scope", "chat_kind"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self._ttft = Histogram(
            "coderd_chatd_ttft_seconds",
            "Time-to-first-token: wall time from LLM request to first streamed chunk.",
            ["provider", "model"],
            buckets=TTFT_BUCKETS,
            registry=self.registry,
        )
        self._retries = Counter(
            "coderd_chatd_stream_retries",
            "Total LLM stream retries.",
            ["provider", "model", "kind"],
            registry=self.registry,
        )
        #: Read at each scrape (set by the deployment once its player and replica exist).
        self.live: Callable[[], Live] = Live
        self.registry.register(_LiveCollector(lambda: self.live()))
        #: The same observations as plain figures: stage -> [count, sum_s]; ttft; retries.
        self.stages: dict[str, list[float]] = {}
        self.ttft = [0, 0.0]
        self.retries: dict[str, int] = {}

    def stage(self, name: str, seconds: float) -> None:
        self._stages.labels(name, SCOPE, ROOT).observe(seconds)
        figures = self.stages.setdefault(name, [0, 0.0])
        figures[0] += 1
        figures[1] += seconds

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
