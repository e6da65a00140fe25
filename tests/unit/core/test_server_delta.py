"""Two made-up scrapes in, the deltas of Coder's chatd metrics out, computed by hand."""

from __future__ import annotations

import math

import pytest

from loadtest.core.server_delta import (
    AGENTS_ACTIVE,
    ANOMALIES,
    CAPACITY_WAIT,
    MODEL_STAGES,
    STAGES,
    Samples,
    Scrape,
    bucket_quantile,
    counter_deltas,
    histogram_deltas,
    labels_of,
    server_figures,
)

INF = math.inf


def histogram(
    name: str, labels: dict[str, str], buckets: dict[str, float], total: float
) -> Samples:
    """One series: cumulative ``buckets`` by ``le`` (the ``+Inf`` one is the count)."""
    return {
        f"{name}_bucket": {labels_of({**labels, "le": le}): n for le, n in buckets.items()},
        f"{name}_count": {labels_of(labels): buckets["+Inf"]},
        f"{name}_sum": {labels_of(labels): total},
    }


def merged(*parts: Samples) -> Samples:
    out: Samples = {}
    for part in parts:
        for name, series in part.items():
            out.setdefault(name, {}).update(series)
    return out


def stage(name: str, buckets: dict[str, float], total: float, scope: str = "turn") -> Samples:
    labels = {"stage": name, "scope": scope, "chat_kind": "root"}
    return histogram(STAGES, labels, buckets, total)


def model_stage(model: str, buckets: dict[str, float], total: float) -> Samples:
    labels = {"stage": "stream", "provider_type": "openai-compat", "chat_kind": "root"}
    return histogram(MODEL_STAGES, {**labels, "model": model}, buckets, total)


def anomalies(**by_reason: float) -> Samples:
    return {ANOMALIES: {labels_of({"reason": r}): n for r, n in by_reason.items()}}


def test_bucket_quantile_interpolates_within_the_bucket_as_prometheus_does() -> None:
    # 10 in (0, 0.1], 30 in (0.1, 0.5], 60 in (0.5, 1]: cumulative 10, 40, 100.
    buckets = {0.1: 10.0, 0.5: 40.0, 1.0: 100.0, INF: 100.0}
    assert bucket_quantile(0.05, buckets) == pytest.approx(0.05)  # rank 5 of 10 in [0, 0.1]
    assert bucket_quantile(0.25, buckets) == pytest.approx(0.3)  # rank 25: 15/30 of 0.1..0.5
    assert bucket_quantile(0.5, buckets) == pytest.approx(0.5 + 0.5 * 10 / 60)
    assert bucket_quantile(0.99, buckets) == pytest.approx(0.5 + 0.5 * 59 / 60)


def test_a_rank_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    assert bucket_quantile(0.99, {0.1: 1.0, 1.0: 2.0, INF: 10.0}) == 1.0


def test_no_observations_or_no_inf_bucket_is_no_quantile() -> None:
    assert bucket_quantile(0.5, {0.1: 0.0, INF: 0.0}) is None
    assert bucket_quantile(0.5, {0.1: 3.0, 1.0: 3.0}) is None
    assert bucket_quantile(0.5, {}) is None


def test_histogram_delta_subtracts_every_bucket_count_and_sum() -> None:
    start = stage("stream", {"0.1": 1, "1": 3, "+Inf": 4}, 5.0)
    end = stage("stream", {"0.1": 2, "1": 7, "+Inf": 9}, 9.5)
    (delta,) = histogram_deltas(start, end, STAGES).values()
    assert (delta.count, delta.sum) == (5, 4.5)
    assert delta.buckets == {0.1: 1, 1.0: 4, INF: 5}


def test_a_series_new_since_the_start_counts_whole() -> None:
    end = stage("commit", {"0.1": 2, "+Inf": 2}, 0.01)
    (delta,) = histogram_deltas({}, end, STAGES).values()
    assert (delta.count, delta.sum, delta.buckets) == (2, 0.01, {0.1: 2, INF: 2})


def test_a_reset_histogram_counts_its_end_values() -> None:
    start = stage("stream", {"0.1": 5, "+Inf": 8}, 20.0)
    end = stage("stream", {"0.1": 1, "+Inf": 2}, 0.5)
    (delta,) = histogram_deltas(start, end, STAGES).values()
    assert (delta.count, delta.sum, delta.buckets) == (2, 0.5, {0.1: 1, INF: 2})


def test_counter_deltas_by_series_and_a_reset() -> None:
    overloaded = labels_of({"kind": "overloaded"})
    rate = labels_of({"kind": "rate_limit"})
    start: Samples = {"x_total": {overloaded: 3, rate: 10}}
    end: Samples = {"x_total": {overloaded: 7, rate: 4}}
    assert counter_deltas(start, end, "x_total") == {overloaded: 4, rate: 4}


def test_server_figures_of_one_endpoint() -> None:
    retry = "coderd_chatd_stream_retries_total"
    ttft = "coderd_chatd_ttft_seconds"
    model = {"provider": "openai", "model": "gpt"}

    def retries(n: float) -> Samples:
        return {retry: {labels_of({**model, "kind": "overloaded"}): n}}

    def agents(active: float, queued: float) -> Samples:
        return {
            AGENTS_ACTIVE: {
                labels_of({"pool": "root"}): active,
                labels_of({"pool": "subagent"}): 1,
            },
            "coderd_chatd_agents_queued_for_capacity": {labels_of({"pool": "root"}): queued},
        }

    start = merged(
        stage("queue_wait", {"0.1": 2, "+Inf": 2}, 0.02),
        stage("commit", {"0.1": 9, "+Inf": 9}, 0.9, scope="background"),
        histogram(ttft, model, {"0.5": 1, "1": 2, "+Inf": 2}, 1.2),
        retries(1),
        agents(3, 5),
        {"coder_pubsub_publishes_total": {labels_of({"backend": "nats", "success": "true"}): 10}},
        model_stage("gpt", {"1": 1, "+Inf": 1}, 0.5),
        anomalies(negative_elapsed=1),
        histogram(CAPACITY_WAIT, {}, {"1": 1, "5": 1, "+Inf": 1}, 0.5),
    )
    end = merged(
        stage("queue_wait", {"0.1": 6, "+Inf": 6}, 0.1),
        stage("commit", {"0.1": 10, "+Inf": 10}, 1.0, scope="background"),
        histogram(ttft, model, {"0.5": 3, "1": 6, "+Inf": 6}, 3.2),
        retries(4),
        agents(1, 0),
        model_stage("gpt", {"1": 3, "+Inf": 4}, 3.5),
        model_stage("other-model", {"1": 1, "+Inf": 1}, 0.25),
        anomalies(negative_elapsed=1, future_start=2),
        histogram(CAPACITY_WAIT, {}, {"1": 1, "5": 3, "+Inf": 3}, 6.5),
        {
            "coder_pubsub_publishes_total": {
                labels_of({"backend": "nats", "success": "true"}): 25,
                labels_of({"backend": "nats", "success": "false"}): 2,
            },
            "coder_pubsub_messages_total": {
                labels_of({"backend": "nats", "size": "normal"}): 40,
                labels_of({"backend": "nats", "size": "colossal"}): 1,
            },
        },
    )
    figures = server_figures([Scrape("u", start)], [Scrape("u", end)])
    queue = figures["stages"]["queue_wait"]
    assert (queue["count"], queue["sum_s"]) == (4, pytest.approx(0.08))
    assert queue["mean_ms"] == pytest.approx(20.0)
    assert queue["p50_ms"] == pytest.approx(50.0)  # rank 2 of 4 in [0, 0.1]
    assert list(figures["stages"]) == ["queue_wait"]
    assert figures["background_stages"]["commit"]["count"] == 1
    ttft_figures = figures["ttft"]
    assert (ttft_figures["count"], ttft_figures["mean_ms"]) == (4, pytest.approx(500.0))
    # Delta buckets: 2 in [0, 0.5], 2 in (0.5, 1]: p50 at 0.5 s, p95 at 0.5 + 0.5 * 1.8/2.
    assert ttft_figures["p50_ms"] == pytest.approx(500.0)
    assert ttft_figures["p95_ms"] == pytest.approx(950.0)
    assert figures["retries"] == {"overloaded": 3}
    assert figures["agents"]["active"] == {"start": 4, "end": 2, "max": 4}
    assert figures["agents"]["queued_for_capacity"] == {"start": 5, "end": 0, "max": 5}
    assert figures["pubsub"] == {"publishes": 15, "colossal": 1}
    streams = figures["model_stages"]["stream"]
    assert (streams["gpt"]["count"], streams["gpt"]["sum_s"]) == (3, pytest.approx(3.0))
    assert streams["other-model"]["count"] == 1
    assert figures["stage_anomalies"] == {"future_start": 2, "negative_elapsed": 0}
    waits = figures["capacity_wait"]
    assert (waits["count"], waits["sum_s"], waits["mean_ms"]) == (2, 6.0, 3000.0)
    assert figures["missing"] == []
    assert figures["error"] is None


def test_every_stage_that_comes_is_read_even_one_we_never_heard_of() -> None:
    end = merged(stage("mcp_connect", {"+Inf": 2}, 0.2), stage("stage_of_2027", {"+Inf": 1}, 1))
    figures = server_figures([Scrape("u", {})], [Scrape("u", end)])
    assert figures["stages"]["stage_of_2027"]["count"] == 1
    assert figures["stages"]["mcp_connect"]["count"] == 2
    assert figures["model_stages"] == {}
    assert figures["stage_anomalies"] is None and figures["capacity_wait"] is None
    assert "coderd_chatd_model_stage_duration_seconds" in figures["missing"]


def test_several_endpoints_add_up_and_an_unreadable_one_is_an_error() -> None:
    one = stage("stream", {"1": 1, "+Inf": 1}, 0.5)
    two = stage("stream", {"1": 3, "+Inf": 3}, 1.5)
    start = [Scrape("a", {}), Scrape("b", {}), Scrape("c", error="HTTP 503")]
    end = [Scrape("a", one), Scrape("b", two), Scrape("c", {})]
    figures = server_figures(start, end)
    assert figures["stages"]["stream"]["count"] == 4
    assert figures["stages"]["stream"]["sum_s"] == pytest.approx(2.0)
    assert figures["error"] == "c: start: HTTP 503"


def test_families_not_scraped_are_listed_and_read_as_none() -> None:
    figures = server_figures([Scrape("u", {})], [Scrape("u", stage("stream", {"+Inf": 0}, 0))])
    assert STAGES not in figures["missing"]
    assert "coderd_chatd_ttft_seconds" in figures["missing"]
    assert "coder_pubsub_publishes_total" in figures["missing"]
    assert figures["ttft"] is None and figures["retries"] is None
    assert figures["pubsub"] == {"publishes": None, "colossal": None}
    assert figures["agents"] == {"active": None, "queued_for_capacity": None}


def test_every_endpoint_unreadable_lists_nothing_missing() -> None:
    figures = server_figures([Scrape("u", error="refused")], [Scrape("u", error="refused")])
    assert figures["missing"] == []
    assert figures["error"] == "u: start: refused; end: refused"


def test_the_first_nats_pubsub_names_are_read_too() -> None:
    name = "coder_nats_pubsub_publishes_total"
    start: Samples = {name: {labels_of({"success": "true"}): 1}}
    end: Samples = {name: {labels_of({"success": "true"}): 6}}
    figures = server_figures([Scrape("u", start)], [Scrape("u", end)])
    assert figures["pubsub"]["publishes"] == 5
    assert "coder_pubsub_publishes_total" not in figures["missing"]
