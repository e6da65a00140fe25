"""``--prometheus ADDR``: the run's live figures on ``/metrics``, under Coder's scaletest names.

The names Coder's ``coder exp scaletest chat`` exports (protocol §6:
``coderd_scaletest_chat_*`` and ``coderd_scaletest_active_chat_streams``), so dashboards
built for it read chatload unchanged; ``chatload_*`` for what scaletest has no name for.
Each scrape reads the run's merged live snapshot (in a distributed run the master's, merged
from every worker), so the figures are the report's, as of that moment. Served by
``prometheus_client`` (its own registry, its own HTTP server) while the run lasts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from loadtest.core.figures import INTEGRITY_BREAKS
from loadtest.core.histogram import Histogram, highest_equivalent
from loadtest.core.recorder import RECONNECTS_PREFIX, RETRIES_PREFIX
from loadtest.core.snapshot import Snapshot
from loadtest.runner.listen import check_free, parse_address

SCALETEST = "coderd_scaletest_chat_"
#: Bucket bounds (s) of the latency histograms: Coder's scaletest spans 10 ms to minutes.
BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
#: (our latency, scaletest's histogram name).
LATENCIES = (
    ("chat_create_latency", "create_latency_seconds"),
    ("chat_message_latency", "message_latency_seconds"),
    ("conversation_duration", "conversation_duration_seconds"),
    ("time_to_running", "time_to_running_seconds"),
    ("time_to_first_output", "time_to_first_output_seconds"),
    ("time_to_terminal_status", "time_to_terminal_status_seconds"),
)
#: chatload's counters with no scaletest name: (count, metric without ``_total``, help).
COUNTERS = (
    ("turns_started", "chatload_turns_started", "Turns started (user messages sent)"),
    ("frames", "chatload_frames", "Stream data frames read"),
    ("events", "chatload_events", "Stream events read"),
    (
        "decode_errors",
        "chatload_decode_errors",
        "Frames or fields not of the protocol's shape",
    ),
    ("stream_reconnects", "chatload_stream_reconnects", "Streams dialled again"),
    (
        "failover_loss",
        "chatload_failover_loss",
        "Committed messages a dropped stream never received",
    ),
)


def _buckets(hist: Histogram) -> tuple[list[tuple[str, float]], float]:
    """Cumulative (le, count) pairs in seconds from a µs histogram, and the sum (s)."""
    bounds_us = [int(b * 1e6) for b in BUCKETS_S]
    counts = [0] * len(bounds_us)
    for index, n in hist.counts.items():
        value = highest_equivalent(index)
        for i, bound in enumerate(bounds_us):
            if value <= bound:
                counts[i] += n
                break
    cumulative: list[tuple[str, float]] = []
    running = 0
    for le, n in zip(BUCKETS_S, counts, strict=True):
        running += n
        cumulative.append((repr(le), float(running)))
    cumulative.append(("+Inf", float(hist.count)))
    return cumulative, hist.total / 1e6


class LiveFigures(Collector):
    """Prometheus's view of ``live()``, computed at each scrape."""

    def __init__(self, live: Callable[[], Snapshot]) -> None:
        self._live = live

    def collect(self) -> Iterator[Metric]:
        snap = self._live()
        for ours, name in LATENCIES:
            family = HistogramMetricFamily(
                SCALETEST + name, f"chatload's {ours}, seconds", labels=["phase"]
            )
            buckets, total = _buckets(snap.histogram(ours))
            family.add_metric(["all"], buckets, sum_value=total)
            yield family
        stages = CounterMetricFamily(
            SCALETEST + "stage_failures", "Failures by stage (chatload's stages)", labels=["stage"]
        )
        by_stage: dict[str, float] = {}
        for row in snap.errors:
            by_stage[str(row[0])] = by_stage.get(str(row[0]), 0.0) + float(row[-1])
        for stage, n in sorted(by_stage.items()):
            stages.add_metric([stage], n)
        yield stages
        terminal = CounterMetricFamily(
            SCALETEST + "terminal_status", "Turns ended, by how", labels=["status"]
        )
        terminal.add_metric(["waiting"], float(snap.count("turns_completed")))
        terminal.add_metric(["error"], float(snap.count("turns_failed")))
        yield terminal
        for count, name, text in (
            ("turns_completed", SCALETEST + "turns_completed", "Turns completed"),
            ("retry_events", SCALETEST + "retry_events", "Retry events seen on streams"),
        ):
            yield CounterMetricFamily(name, text, value=float(snap.count(count)))
        yield GaugeMetricFamily(
            "coderd_scaletest_active_chat_streams",
            "Chat streams open now",
            value=float(snap.level("open_streams")),
        )
        for count, name, text in COUNTERS:
            yield CounterMetricFamily(name, text, value=float(snap.count(count)))
        yield _by_label(
            "chatload_integrity",
            "Stream integrity breaks, by kind",
            "kind",
            {kind: snap.count(kind) for kind in INTEGRITY_BREAKS},
        )
        yield _by_label(
            "chatload_reconnects",
            "Dropped streams back on a new socket, by cause",
            "cause",
            snap.counts_under(RECONNECTS_PREFIX),
        )
        yield _by_label(
            "chatload_retries",
            "Retry events on streams, by the error's kind (unknown: the event named none)",
            "kind",
            snap.counts_under(RETRIES_PREFIX),
        )


def _by_label(name: str, text: str, label: str, counts: dict[str, int]) -> CounterMetricFamily:
    """One counter broken down by ``label``."""
    family = CounterMetricFamily(name, text, labels=[label])
    for value, n in counts.items():
        family.add_metric([value], float(n))
    return family


class MetricsServer:
    """``/metrics`` on ``address`` for as long as the run lasts."""

    def __init__(self, address: str) -> None:
        # As Coder's --scaletest-prometheus-address takes it.
        self.host, self.port = parse_address("--prometheus", address, "0.0.0.0:21112")
        self._server: Any = None
        self._thread: Any = None

    def check(self) -> None:
        """Refuse an address that cannot be served, before the run starts (OSError)."""
        check_free(self.host, self.port)

    def start(self, live: Callable[[], Snapshot]) -> None:
        from prometheus_client import start_http_server

        registry = CollectorRegistry(auto_describe=False)
        registry.register(LiveFigures(live))
        self._server, self._thread = start_http_server(self.port, self.host, registry=registry)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
