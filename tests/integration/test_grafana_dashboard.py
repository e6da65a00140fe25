"""``deploy/grafana/chatload.json`` against a real Prometheus that scraped a run and the
simulator's Coder-like /metrics: every panel's every query parses and returns data."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tests.integration.prometheus_server import SCRAPE_S, PromQLError, ScrapedRun

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "chatload.json"


def queries() -> list[tuple[str, str]]:
    """(panel title and refId, PromQL) of every target of every panel."""
    panels: list[dict[str, Any]] = json.loads(DASHBOARD.read_text())["panels"]
    return [
        (f"{panel['title']} [{target['refId']}]", target["expr"])
        for panel in panels
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def grafana(expr: str, span_s: float) -> str:
    """What Grafana sends for ``expr``: its variables replaced as it would (all runs; a
    rate interval of four scrapes; the whole run as the range)."""
    return (
        expr.replace("$__rate_interval", f"{4 * SCRAPE_S:g}s")
        .replace("$__range", f"{math.ceil(span_s)}s")
        .replace("$run_id", ".*")
    )


@pytest.mark.parametrize(("panel", "expr"), queries(), ids=[title for title, _ in queries()])
def test_every_panel_query_parses_and_returns_data(
    scraped: ScrapedRun, panel: str, expr: str
) -> None:
    span = scraped.last - scraped.first
    try:
        result = scraped.prometheus.query_range(
            grafana(expr, span), scraped.first, scraped.last, SCRAPE_S
        )
    except PromQLError as exc:
        pytest.fail(f"{panel}: {exc}")
    values = [float(v) for series in result for _, v in series["values"]]
    assert any(math.isfinite(v) for v in values), f"{panel} returns nothing: {expr}"
