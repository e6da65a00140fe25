"""``report.json``'s ``server_metrics``: what the deployment's own metrics said of the run.

Built from two scrapes (``client/server_metrics.py``) by the pure ``core/server_delta.py``;
it puts the client's time to first output beside the server's time to first token, so the
difference (network, API layer, queueing and retries before the LLM call) is plain.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pydantic import Field

from loadtest.core.server_delta import Scrape, server_figures
from loadtest.report.strict import Strict


class StageFigures(Strict):
    """One histogram's observations between the scrapes; quantiles estimated from buckets."""

    count: int
    sum_s: float
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class GaugeFigures(Strict):
    start: float
    end: float
    #: The larger of the two scrapes (a gauge is only seen when scraped).
    max: float


class Agents(Strict):
    active: GaugeFigures | None = None
    queued_for_capacity: GaugeFigures | None = None


class PubsubMetrics(Strict):
    publishes: int | None = None
    colossal: int | None = None


class ClientVsServerTtft(Strict):
    """The client's ``time_to_first_output`` (from its POST) beside the server's
    ``coderd_chatd_ttft_seconds`` (from its LLM request); difference = client - server."""

    client_mean_ms: float | None = None
    server_mean_ms: float | None = None
    difference_mean_ms: float | None = None
    client_p50_ms: float | None = None
    server_p50_ms: float | None = None
    difference_p50_ms: float | None = None
    client_p95_ms: float | None = None
    server_p95_ms: float | None = None
    difference_p95_ms: float | None = None


class ClientVsServerToolTime(ClientVsServerTtft):
    """The client's ``tool_time`` (a complete tool-call part -> its tool-result part, on the
    chat's stream) beside chatd's ``tool_call`` stage (``coderd_chatd_stage_duration_seconds
    {stage="tool_call"}``, coderd/x/chatd/chatloop/metrics.go: the tool running);
    difference = client - server (the commit before the tool runs, and publishing and
    delivering the two parts)."""


#: chatd's stage that times a tool run (coderd/x/chatd/chatloop/metrics.go, protocol §9.7).
TOOL_CALL_STAGE = "tool_call"


class ServerMetrics(Strict):
    scraped_from: str | None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    #: Why some or all figures are missing (an endpoint unreachable, ...); None when read.
    error: str | None = None
    #: Turn-scoped stages (``coderd_chatd_stage_duration_seconds``), by stage.
    stages: dict[str, StageFigures] = Field(default_factory=dict)
    #: Stages of background work (title and summary calls), by stage.
    background_stages: dict[str, StageFigures] = Field(default_factory=dict)
    #: The provider's work on each model (``coderd_chatd_model_stage_duration_seconds``,
    #: turn-scoped ``stream`` and ``provider_attempt``): stage -> model -> figures.
    model_stages: dict[str, dict[str, StageFigures]] = Field(default_factory=dict)
    #: Stage observations Coder dropped or adjusted (``coderd_chatd_stage_anomalies_total``)
    #: by reason; None when not exported.
    stage_anomalies: dict[str, int] | None = None
    #: ``coderd_chatd_agent_capacity_wait_seconds``: refused chats' waits for an agent slot.
    capacity_wait: StageFigures | None = None
    ttft: StageFigures | None = None
    #: ``coderd_chatd_stream_retries_total`` by kind.
    retries: dict[str, int] | None = None
    agents: Agents = Field(default_factory=Agents)
    pubsub: PubsubMetrics = Field(default_factory=PubsubMetrics)
    client_vs_server_ttft: ClientVsServerTtft = Field(default_factory=ClientVsServerTtft)
    #: The client's tool time beside chatd's ``tool_call`` stage (agents' turns).
    client_vs_server_tool_time: ClientVsServerToolTime = Field(
        default_factory=ClientVsServerToolTime
    )
    #: The families not in the end scrape: never observed, or not exported (the stage
    #: histogram needs Coder's ``chat-stage-metrics`` experiment).
    missing: list[str] = Field(default_factory=list)


class Latency(Protocol):
    """What is read of the client's latency summary (``model.Summary``)."""

    count: int
    mean: float
    p50: float
    p95: float


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 6)


def _compare(
    compare: ClientVsServerTtft, client: Latency | None, server: StageFigures | None
) -> None:
    """``compare``'s fields: the client's summary, the server's figures, their differences."""
    if client is not None and client.count:
        compare.client_mean_ms = client.mean
        compare.client_p50_ms = client.p50
        compare.client_p95_ms = client.p95
    if server is not None and server.count:
        compare.server_mean_ms = server.mean_ms
        compare.server_p50_ms = server.p50_ms
        compare.server_p95_ms = server.p95_ms
    compare.difference_mean_ms = _minus(compare.client_mean_ms, compare.server_mean_ms)
    compare.difference_p50_ms = _minus(compare.client_p50_ms, compare.server_p50_ms)
    compare.difference_p95_ms = _minus(compare.client_p95_ms, compare.server_p95_ms)


def build_server_metrics(
    scraped_from: str,
    started: tuple[datetime, list[Scrape]],
    ended: tuple[datetime, list[Scrape]],
    client_ttft: Latency | None,
    client_tool_time: Latency | None = None,
) -> ServerMetrics:
    """The section from the scrapes at the start and the end; ``client_ttft`` is the report's
    ``latency_ms.time_to_first_output``, ``client_tool_time`` its ``tool_time``."""
    figures = server_figures(started[1], ended[1])
    section = ServerMetrics(
        scraped_from=scraped_from, started_at=started[0], ended_at=ended[0], **figures
    )
    _compare(section.client_vs_server_ttft, client_ttft, section.ttft)
    _compare(
        section.client_vs_server_tool_time,
        client_tool_time,
        section.stages.get(TOOL_CALL_STAGE),
    )
    return section


def _ms(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f} ms"


def server_metrics_line(section: ServerMetrics) -> str:
    """One line for the terminal: the client's TTFT beside the server's, or what went wrong."""
    compare = section.client_vs_server_ttft
    if compare.server_mean_ms is None:
        why = section.error or "no coderd_chatd_ttft_seconds observations between the scrapes"
        return f"server metrics ({section.scraped_from}): {why}"
    tools = section.client_vs_server_tool_time
    tool_time = (
        f"; tool time p50 client {_ms(tools.client_p50_ms)}, server tool_call stage "
        f"{_ms(tools.server_p50_ms)}"
        if tools.client_mean_ms is not None and tools.server_mean_ms is not None
        else ""
    )
    return (
        f"server metrics: TTFT p50 client {_ms(compare.client_p50_ms)}, server "
        f"{_ms(compare.server_p50_ms)} (mean {_ms(compare.client_mean_ms)} vs "
        f"{_ms(compare.server_mean_ms)}: {_ms(compare.difference_mean_ms)} is network, API, "
        f"queueing and retries){tool_time}"
    )
