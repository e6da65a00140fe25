"""``--prometheus ADDR``: the run's live figures on ``/metrics``, under Coder's scaletest names.

The names, labels and buckets Coder's ``coder exp scaletest chat`` exports
(``protocol/scaletest.py``, from scaletest/chat/metrics.go): every ``coderd_scaletest_*``
series carries ``run_id`` (the run's id, also ``report.json``'s ``run.run_id``); the turn
histograms carry ``phase`` (``initial``: a chat's first turn; ``follow_up``: the rest), with
Coder's buckets, so Coder's dashboards and alerts read a chatload run unchanged. Our own
stages, and what scaletest has no name for, are ``chatload_*``: every figure of
``core.figures`` as ``chatload_<name>`` (``metric_name``), its help the figure's formula. Each scrape reads the run's
merged live measurement (in a distributed run the master's, merged from every worker), so the
figures are the report's, as of that moment. Served by ``prometheus_client`` (its own
registry, its own HTTP server) while the run lasts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, Final

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from loadtest.core.figures import (
    FIGURES,
    INTEGRITY_BREAKS,
    Figure,
    count_values,
    rate_values,
)
from loadtest.core.histogram import Histogram, highest_equivalent
from loadtest.core.measurement import Measurement
from loadtest.core.recorder import (
    RECONNECTS_PREFIX,
    RETRIES_PREFIX,
    TOOL_CALLS_PREFIX,
    TOOL_TIME_PREFIX,
)
from loadtest.protocol import scaletest
from loadtest.protocol.agents import POOL_ROOT, POOL_SUBAGENT
from loadtest.runner.listen import check_free, parse_address

#: scaletest's histogram -> our latency (``<name>_initial`` holds a chat's first turns alone).
OURS: Final = {
    scaletest.PREFIX + "chat_create_latency_seconds": "chat_create_latency",
    scaletest.PREFIX + "chat_message_latency_seconds": "chat_message_latency",
    scaletest.PREFIX + "chat_conversation_duration_seconds": "conversation_duration",
    scaletest.PREFIX + "chat_time_to_running_seconds": "time_to_running",
    scaletest.PREFIX + "chat_time_to_first_output_seconds": "time_to_first_output",
    scaletest.PREFIX + "chat_time_to_terminal_status_seconds": "time_to_terminal_status",
}
#: Our failure stages on scaletest's five (run.go: a stream that ends or breaks before the
#: turns are done is ``stream_ended_early``); ours without one count in
#: ``chatload_stage_failures_total`` only.
STAGE_MAP: Final = {
    "create_chat": "create_chat",
    "create_message": "create_message",
    "stream_open": "stream_open",
    "stream_closed": "stream_ended_early",
    "stream_event": "stream_ended_early",
    "status_error": "status_error",
}
#: Figures whose own family is broken down by a label (its values sum to the figure), so
#: they are not exported again unlabelled: tool calls and tool time by tool, reconnects by
#: cause, and the root pool's capacity wait (``chatload_capacity_wait_seconds{pool}``).
LABELLED: Final = frozenset({"tool_calls", "reconnects", "tool_time", "capacity_wait"})
#: Upper bounds of a distribution's histogram, in the figure's unit: 1, 2, 5 per decade.
DISTRIBUTION_BUCKETS: Final = tuple(m * 10.0**e for e in range(-2, 10) for m in (1, 2, 5))
#: The same for a distribution kept in ns, exported in seconds.
NS_BUCKETS: Final = tuple(m * 10.0**e for e in range(-7, -1) for m in (1, 2, 5))
#: Figure names whose tokens promtool's lint reads as abbreviated units -> the metric's.
RENAMED: Final = {"streams_era_b": "streams_era_bare_array"}


def metric_name(figure: Figure) -> str:
    """The family a figure is exported as: ``chatload_<name>``, in base units (latencies and
    ``_ns`` figures in ``_seconds``, ``_per_s`` as ``_per_second``), ``RENAMED`` renamed."""
    name = RENAMED.get(figure.name, figure.name).replace("_per_s", "_per_second")
    if figure.section == "latency_ms" or name.endswith("_ns"):
        name = name.removesuffix("_ns") + "_seconds"
    return "chatload_" + name


def buckets(
    counts: dict[int, int],
    count: int,
    total_us: int,
    bounds_s: tuple[float, ...],
    per_unit: float = 1e6,
) -> tuple[list[tuple[str, float]], float]:
    """Cumulative (le, count) pairs over ``bounds_s`` from a µs histogram's counts (by HDR
    index; a value counts under the first bound it does not exceed), and the sum in s.
    ``per_unit``: stored values per unit of the bounds (another unit than µs and s)."""
    per_bound = [0] * len(bounds_s)
    bounds_us = [b * per_unit for b in bounds_s]
    for index, n in counts.items():
        value = highest_equivalent(index)
        for i, bound in enumerate(bounds_us):
            if value <= bound:
                per_bound[i] += n
                break
    cumulative: list[tuple[str, float]] = []
    running = 0
    for le, n in zip(bounds_s, per_bound, strict=True):
        running += n
        cumulative.append((floatToGoString(le), float(running)))
    cumulative.append(("+Inf", float(count)))
    return cumulative, total_us / per_unit


def by_phase(measured: Measurement, ours: str) -> dict[str, tuple[dict[int, int], int, int]]:
    """A turn latency split by scaletest phase: (counts, count, total µs) of a chat's first
    turns (``<ours>_initial``), and of the rest (the whole less those, exactly)."""
    whole, first = measured.histogram(ours), measured.histogram(ours + "_initial")
    rest = {
        index: n - first.counts.get(index, 0)
        for index, n in whole.counts.items()
        if n > first.counts.get(index, 0)
    }
    return {
        scaletest.PHASE_INITIAL: (first.counts, first.count, first.total),
        scaletest.PHASE_FOLLOW_UP: (rest, whole.count - first.count, whole.total - first.total),
    }


def _histogram(spec: scaletest.ScaletestHistogram, measured: Measurement, run_id: str) -> Metric:
    ours = OURS[spec.name]
    labels = [scaletest.RUN_ID, scaletest.PHASE] if spec.phased else [scaletest.RUN_ID]
    family = HistogramMetricFamily(spec.name, spec.help, labels=labels)
    if not spec.phased:
        hist: Histogram = measured.histogram(ours)
        cumulative, total = buckets(hist.counts, hist.count, hist.total, spec.buckets)
        family.add_metric([run_id], cumulative, sum_value=total)
    elif ours == "chat_message_latency":
        # Observed for follow-ups only (run.go): a chat's first turn is its create.
        hist = measured.histogram(ours)
        cumulative, total = buckets(hist.counts, hist.count, hist.total, spec.buckets)
        family.add_metric([run_id, scaletest.PHASE_FOLLOW_UP], cumulative, sum_value=total)
    else:
        for phase, (counts, count, total_us) in by_phase(measured, ours).items():
            cumulative, total = buckets(counts, count, total_us, spec.buckets)
            family.add_metric([run_id, phase], cumulative, sum_value=total)
    return family


class LiveFigures(Collector):
    """Prometheus's view of ``live()``, computed at each scrape."""

    def __init__(
        self,
        live: Callable[[], Measurement],
        run_id: str,
        elapsed_s: Callable[[], float] | None = None,
    ) -> None:
        self._live = live
        self._run_id = run_id
        #: The run's duration so far, for the rates (by default: since this was made).
        start = time.monotonic()
        self._elapsed_s = elapsed_s or (lambda: time.monotonic() - start)

    def collect(self) -> Iterator[Metric]:
        measured, run_id = self._live(), self._run_id
        for spec in scaletest.HISTOGRAMS:
            yield _histogram(spec, measured, run_id)
        ours: dict[str, float] = {}
        for row in measured.errors:
            ours[str(row[0])] = ours.get(str(row[0]), 0.0) + float(row[-1])
        theirs = dict.fromkeys(scaletest.FAILURE_STAGES, 0.0)
        for stage, n in ours.items():
            if stage in STAGE_MAP:
                theirs[STAGE_MAP[stage]] += n
        stages = CounterMetricFamily(
            scaletest.STAGE_FAILURES,
            scaletest.STAGE_FAILURES_HELP,
            labels=[scaletest.RUN_ID, scaletest.STAGE],
        )
        for stage, n in theirs.items():
            stages.add_metric([run_id, stage], n)
        yield stages
        terminal = CounterMetricFamily(
            scaletest.TERMINAL_STATUS,
            scaletest.TERMINAL_STATUS_HELP,
            labels=[scaletest.RUN_ID, scaletest.STATUS],
        )
        terminal.add_metric([run_id, "waiting"], float(measured.count("turns_completed")))
        terminal.add_metric([run_id, "error"], ours.get("status_error", 0.0))
        yield terminal
        for count, name, text in (
            ("turns_completed", scaletest.TURNS_COMPLETED, scaletest.TURNS_COMPLETED_HELP),
            ("retry_events", scaletest.RETRY_EVENTS, scaletest.RETRY_EVENTS_HELP),
        ):
            family = CounterMetricFamily(name, text, labels=[scaletest.RUN_ID])
            family.add_metric([run_id], float(measured.count(count)))
            yield family
        streams = GaugeMetricFamily(
            scaletest.ACTIVE_STREAMS, scaletest.ACTIVE_STREAMS_HELP, labels=[scaletest.RUN_ID]
        )
        streams.add_metric([run_id], float(measured.level("open_streams")))
        yield streams
        yield _by_label(
            "chatload_stage_failures",
            "Failures by chatload's own stage (scaletest's five are coderd_scaletest_*)",
            "stage",
            {stage: round(n) for stage, n in sorted(ours.items())},
        )
        yield _by_label(
            "chatload_integrity",
            "Stream integrity breaks, by kind",
            "kind",
            {kind: measured.count(kind) for kind in INTEGRITY_BREAKS},
        )
        yield _by_label(
            "chatload_reconnects",
            "Dropped streams back on a new socket, by cause",
            "cause",
            measured.counts_under(RECONNECTS_PREFIX),
        )
        yield _by_label(
            "chatload_retries",
            "Retry events on streams, by the error's kind (unknown: the event named none)",
            "kind",
            measured.counts_under(RETRIES_PREFIX),
        )
        yield from _agents(measured)
        yield from figures(measured, self._elapsed_s())


def figures(measured: Measurement, elapsed_s: float) -> Iterator[Metric]:
    """Every figure of ``core.figures`` (but ``LABELLED``'s) under ``metric_name``, its help
    the figure's formula: counts as counters (a peak or a derived count as a gauge),
    latencies as histograms in seconds (Coder's request buckets), distributions as
    histograms in their unit, rates as gauges over ``elapsed_s``."""
    counts = count_values(measured.counts, measured.maxima)
    rates = rate_values(counts, elapsed_s)
    for figure in FIGURES:
        if figure.name in LABELLED:
            continue
        name, text = metric_name(figure), figure.formula or figure.name.replace("_", " ")
        if figure.section == "latency_ms":
            family = HistogramMetricFamily(name, text, labels=[])
            _seconds(family, [], measured.histogram(figure.name))
            yield family
        elif figure.section == "distributions":
            hist = measured.histogram(figure.name)
            family = HistogramMetricFamily(name, text, labels=[])
            ns = figure.name.endswith("_ns")
            cumulative, total = buckets(
                hist.counts,
                hist.count,
                hist.total,
                NS_BUCKETS if ns else DISTRIBUTION_BUCKETS,
                figure.scale * (1e9 if ns else 1),
            )
            family.add_metric([], cumulative, sum_value=total)
            yield family
        elif figure.section == "rates":
            yield GaugeMetricFamily(name, text, value=rates[figure.name])
        elif figure.merge == "sum":
            yield CounterMetricFamily(name, text, value=float(counts[figure.name]))
        else:
            yield GaugeMetricFamily(name, text, value=float(counts[figure.name]))


def _seconds(family: HistogramMetricFamily, labels: list[str], hist: Histogram) -> None:
    cumulative, total = buckets(hist.counts, hist.count, hist.total, scaletest.REQUEST_BUCKETS)
    family.add_metric(labels, cumulative, sum_value=total)


def _agents(measured: Measurement) -> Iterator[Metric]:
    """Tool calls and tool time by tool name, step and sub-agent latencies, capacity waits by
    pool: the client's side of chatd's ``tool_call`` and ``capacity_wait`` stages."""
    yield _by_label(
        "chatload_tool_calls",
        "Tool calls in committed assistant messages, by tool name",
        "tool",
        measured.counts_under(TOOL_CALLS_PREFIX),
    )
    tools = HistogramMetricFamily(
        "chatload_tool_time_seconds",
        "A complete tool-call part -> its tool-result part, by tool name",
        labels=["tool"],
    )
    for name in sorted(measured.latency):
        if name.startswith(TOOL_TIME_PREFIX):
            _seconds(tools, [name.removeprefix(TOOL_TIME_PREFIX)], measured.histogram(name))
    yield tools
    waits = HistogramMetricFamily(
        "chatload_capacity_wait_seconds",
        "A turn's start (a child's spawn call) -> the concurrent-agent gate admitting its chat, "
        "by pool",
        labels=["pool"],
    )
    for pool, ours in ((POOL_ROOT, "capacity_wait"), (POOL_SUBAGENT, "capacity_wait_subagent")):
        _seconds(waits, [pool], measured.histogram(ours))
    yield waits


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

    def start(self, live: Callable[[], Measurement], run_id: str) -> None:
        from prometheus_client import start_http_server

        registry = CollectorRegistry(auto_describe=False)
        registry.register(LiveFigures(live, run_id))
        self._server, self._thread = start_http_server(self.port, self.host, registry=registry)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
