"""``server_metrics`` in a report: the client's TTFT beside the server's, in every writer."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from loadtest.core.recorder import Recorder
from loadtest.core.server_delta import Samples, Scrape, labels_of
from loadtest.report.build import build_report
from loadtest.report.html import render_html
from loadtest.report.markdown import render_markdown
from loadtest.report.model import Report
from loadtest.report.server_metrics import build_server_metrics, server_metrics_line
from tests.unit.samples import feed_some, run_info

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SERIES = labels_of({"provider": "openai", "model": "m"})


def ttft(count: float, total: float) -> Samples:
    """Server TTFTs: ``count`` of them, all within [0, 0.1] s."""
    return {
        "coderd_chatd_ttft_seconds_bucket": {
            labels_of({"provider": "openai", "model": "m", "le": "0.1"}): count,
            labels_of({"provider": "openai", "model": "m", "le": "+Inf"}): count,
        },
        "coderd_chatd_ttft_seconds_count": {SERIES: count},
        "coderd_chatd_ttft_seconds_sum": {SERIES: total},
    }


def report() -> Report:
    recorder = Recorder(origin_ns=0, origin_epoch_s=run_info().started_at.timestamp())
    for seed in (1, 2):
        feed_some(recorder, seed, 6)
    return build_report(recorder.measurement(), run_info(duration=8.0))


def test_the_difference_is_client_minus_server() -> None:
    rep = report()
    client = rep.latency_ms["time_to_first_output"]
    assert client.count
    section = build_server_metrics(
        "http://coder:2112/metrics",
        (AT, [Scrape("http://coder:2112/metrics", ttft(2, 0.1))]),
        (AT, [Scrape("http://coder:2112/metrics", ttft(6, 0.3))]),
        client,
    )
    compare = section.client_vs_server_ttft
    assert section.ttft is not None and section.ttft.count == 4
    assert compare.server_mean_ms == pytest.approx(50.0)
    assert compare.client_mean_ms == client.mean
    assert compare.difference_mean_ms == pytest.approx(client.mean - 50.0)
    assert compare.server_p95_ms is not None
    assert compare.difference_p95_ms == pytest.approx(client.p95 - compare.server_p95_ms)
    assert "server 50 ms" in server_metrics_line(section)


def test_the_section_rides_in_report_json_and_its_pages() -> None:
    rep = report()
    assert orjson.loads(rep.to_json())["server_metrics"] is None
    rep.server_metrics = build_server_metrics(
        "http://coder:2112/metrics",
        (AT, [Scrape("http://coder:2112/metrics", ttft(0, 0))]),
        (AT, [Scrape("http://coder:2112/metrics", error="HTTP 503")]),
        rep.latency_ms["time_to_first_output"],
    )
    data = orjson.loads(rep.to_json())["server_metrics"]
    assert data["error"] == "http://coder:2112/metrics: end: HTTP 503"
    assert data["scraped_from"] == "http://coder:2112/metrics"
    assert Report.model_validate(orjson.loads(rep.to_json())) == rep
    page = render_html(rep)
    assert "What the server saw" in page and "HTTP 503" in page
    assert "Time to first token: client and server" in render_markdown(rep)
    assert "HTTP 503" in server_metrics_line(rep.server_metrics)


def tool_call_stage(count: float, total: float) -> Samples:
    """chatd's ``tool_call`` stage: ``count`` tool runs, all within [0, 0.25] s."""
    series = {"stage": "tool_call", "scope": "turn", "chat_kind": "root"}
    return {
        "coderd_chatd_stage_duration_seconds_bucket": {
            labels_of({**series, "le": "0.25"}): count,
            labels_of({**series, "le": "+Inf"}): count,
        },
        "coderd_chatd_stage_duration_seconds_count": {labels_of(series): count},
        "coderd_chatd_stage_duration_seconds_sum": {labels_of(series): total},
    }


def test_the_clients_tool_time_stands_beside_chatds_tool_call_stage() -> None:
    from tests.unit.agent_events import agent_recorder

    rep = build_report(agent_recorder().measurement(), run_info())
    client = rep.latency_ms["tool_time"]
    url = "http://coder:2112/metrics"
    section = build_server_metrics(
        url,
        (AT, [Scrape(url, {**ttft(0, 0), **tool_call_stage(1, 0.1)})]),
        (AT, [Scrape(url, {**ttft(1, 0.05), **tool_call_stage(5, 0.9)})]),
        rep.latency_ms["time_to_first_output"],
        client,
    )
    tools = section.client_vs_server_tool_time
    assert tools.server_mean_ms == pytest.approx(200.0)  # 4 runs, 0.8 s
    assert tools.client_mean_ms == client.mean == pytest.approx(262.5)
    assert tools.difference_mean_ms == pytest.approx(62.5)
    assert "tool time p50 client" in server_metrics_line(section)
    rep.server_metrics = section
    assert "server tool_call stage" in render_html(rep)
    data = orjson.loads(rep.to_json())["server_metrics"]["client_vs_server_tool_time"]
    assert data["server_mean_ms"] == pytest.approx(200.0)
    # Without agents (no tool_time), nothing to compare: the row stays out of the page.
    plain = build_server_metrics(
        url, (AT, [Scrape(url, ttft(0, 0))]), (AT, [Scrape(url, ttft(1, 0.05))]), None
    )
    assert plain.client_vs_server_tool_time.client_mean_ms is None
