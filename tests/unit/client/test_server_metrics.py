"""``--server-metrics`` at the edge: a scrape parsed, or its failure a warning and a value."""

from __future__ import annotations

import httpx
import pytest

from loadtest.client.server_metrics import MetricsScraper, endpoints, parse, redacted
from loadtest.core.server_delta import labels_of

TEXT = """# HELP coderd_chatd_stream_retries_total Total LLM stream retries.
# TYPE coderd_chatd_stream_retries_total counter
coderd_chatd_stream_retries_total{kind="overloaded",model="m",provider="openai"} 3
# TYPE coderd_chatd_ttft_seconds histogram
coderd_chatd_ttft_seconds_bucket{model="m",provider="openai",le="0.5"} 1
coderd_chatd_ttft_seconds_bucket{model="m",provider="openai",le="+Inf"} 2
coderd_chatd_ttft_seconds_sum{model="m",provider="openai"} 1.25
coderd_chatd_ttft_seconds_count{model="m",provider="openai"} 2
coderd_chatd_ttft_seconds_created{model="m",provider="openai"} 1.7e9
"""


def scraper(handler: object) -> MetricsScraper:
    transport = httpx.MockTransport(handler)  # type: ignore[arg-type]
    return MetricsScraper(["http://coder:2112/metrics"], transport=transport)


def test_parse_keeps_every_sample_by_name_and_labels_and_drops_created() -> None:
    samples = parse(TEXT)
    model = {"model": "m", "provider": "openai"}
    assert samples["coderd_chatd_stream_retries_total"] == {
        labels_of({**model, "kind": "overloaded"}): 3.0
    }
    assert samples["coderd_chatd_ttft_seconds_bucket"][labels_of({**model, "le": "+Inf"})] == 2
    assert samples["coderd_chatd_ttft_seconds_sum"] == {labels_of(model): 1.25}
    assert "coderd_chatd_ttft_seconds_created" not in samples


@pytest.mark.parametrize("body", ["<html><body>sign in</body></html>", '{"message": "no"}'])
def test_parse_refuses_what_is_not_prometheus_text(body: str) -> None:
    with pytest.raises(ValueError):
        parse(body)


def test_a_scrape_reads_the_endpoint() -> None:
    _, (scrape,) = scraper(lambda request: httpx.Response(200, text=TEXT)).scrape()
    assert scrape.error is None
    assert scrape.samples["coderd_chatd_ttft_seconds_count"]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (httpx.Response(503, text="busy"), "HTTP 503"),
        (httpx.Response(200, text="<html>login</html>"), "not Prometheus text"),
    ],
)
def test_a_failed_scrape_is_a_warning_and_an_error_value(
    answer: httpx.Response, error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, (scrape,) = scraper(lambda request: answer).scrape()
    assert scrape.error is not None and scrape.error.startswith(error)
    assert scrape.samples == {}
    assert "warning: --server-metrics http://coder:2112/metrics" in capsys.readouterr().err


def test_an_unreachable_endpoint_is_an_error_value(capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    _, (scrape,) = scraper(refuse).scrape()
    assert scrape.error == "unreachable: ConnectError: [Errno 111] Connection refused"
    assert "unreachable" in capsys.readouterr().err


def test_credentials_in_a_url_are_never_shown(capsys: pytest.CaptureFixture[str]) -> None:
    url = "http://admin:hunter2@coder:2112/metrics?token=hunter2"
    assert redacted(url) == "http://REDACTED@coder:2112/metrics?REDACTED"
    metrics = MetricsScraper([url], transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    _, (scrape,) = metrics.scrape()
    assert "hunter2" not in scrape.url + (scrape.error or "") + metrics.shown
    assert "hunter2" not in capsys.readouterr().err


def test_endpoints_split_commas_and_name_the_embedded_simulator() -> None:
    assert endpoints(["http://a/metrics,http://b/metrics", "sim"], "http://127.0.0.1:9/") == [
        "http://a/metrics",
        "http://b/metrics",
        "http://127.0.0.1:9/metrics",
    ]
    assert endpoints(None, None) == []
    with pytest.raises(ValueError, match="embedded simulator"):
        endpoints(["sim"], None)
