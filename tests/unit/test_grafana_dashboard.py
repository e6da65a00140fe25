"""``deploy/grafana/chatload.json`` without a Prometheus: it imports as a dashboard (ids,
grid, one data source variable), and every metric its queries name is one chatload's
``--prometheus`` or Coder's chatd (the simulator's ``/metrics``) exports. The queries run
against a real Prometheus in tests/integration/test_grafana_dashboard.py."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client.core import Metric

from loadtest.core.measurement import Measurement
from loadtest.runner.prometheus import LiveFigures
from loadtest.sim.metrics import DaemonMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "chatload.json"
#: Grafana's own variables the queries may use.
BUILT_IN = {"__rate_interval", "__range", "__interval"}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def exported(families: list[Metric]) -> set[str]:
    """Every series name a scrape of these families can hold, by their types' suffixes."""
    return {f.name + suffix for f in families for suffix in SUFFIXES[f.type]}


def test_every_metric_a_query_names_is_exported() -> None:
    names = exported(list(LiveFigures(Measurement, "run").collect()))
    names |= exported(list(DaemonMetrics().registry.collect()))
    used = set()
    for panel in panels():
        for target in panel["targets"]:
            found = set(re.findall(r"\b((?:coderd|chatload)_[a-z0-9_]+)", target["expr"]))
            assert found, (panel["title"], target["expr"])
            assert found <= names, (panel["title"], found - names)
            used |= found
    # The panels the dashboard promises, by the series they read.
    for name in (
        "coderd_scaletest_chat_time_to_first_output_seconds_bucket",
        "coderd_scaletest_chat_turns_completed_total",
        "coderd_scaletest_active_chat_streams",
        "coderd_scaletest_chat_stage_failures_total",
        "chatload_stage_failures_total",
        "chatload_integrity_total",
        "chatload_retries_total",
        "chatload_reconnects_total",
        "coderd_chatd_stage_duration_seconds_bucket",
        "coderd_chatd_ttft_seconds_bucket",
    ):
        assert name in used, name


def test_it_imports_as_a_dashboard() -> None:
    data = dashboard()
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in data["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])}  # fmt: skip
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            for name in re.findall(r"\$\{?(\w+)", target["expr"]):
                assert name in BUILT_IN or name in variables, (panel["title"], name)
