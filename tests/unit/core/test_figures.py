"""The one list of figures and what is built from it agree: a count the recorder keeps has
its field in the report, and every figure has a formula a reader can see."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from loadtest.core.figures import FIGURES, INTEGRITY, LATENCIES, RATES, names, slo_paths
from loadtest.core.recorder import Recorder
from loadtest.report.model import Integrity, Rates, RunCounts


def test_the_reports_typed_sections_are_the_figures() -> None:
    assert set(RunCounts.model_fields) == set(names("counts"))
    assert set(Integrity.model_fields) == set(INTEGRITY)
    assert set(Rates.model_fields) == set(RATES)


def test_the_recorder_keeps_every_latency_and_distribution_it_is_named_for() -> None:
    recorder = Recorder()
    assert set(recorder.latency) == set(LATENCIES)
    assert {f.name for f in FIGURES if f.section == "distributions"} == set(recorder.dist)


def test_the_agent_figures_are_listed_and_slo_able() -> None:
    """docs/metrics.md, "Agent steps, tools and sub-agents", as report-contract § Agents names
    them."""
    paths = set(slo_paths())
    for name in (
        "step_time_to_first_output",
        "tool_time",
        "subagent_time_to_running",
        "subagent_time_to_first_output",
        "subagent_duration",
        "capacity_wait_subagent",
        "steps_per_turn",
        "tool_calls_per_turn",
    ):
        assert f"{name}.p95" in paths
    for name in ("tool_calls", "tool_errors", "subagents_spawned", "subagents_failed"):
        assert name in paths
    assert all(f.formula for f in FIGURES if f.name in paths and "agent" in f.name)


def test_a_count_no_figure_declares_is_kept_in_the_report_not_dropped() -> None:
    from loadtest.core.figures import undeclared_counts
    from loadtest.report.build import build_report
    from tests.unit.samples import run_info

    recorder = Recorder()
    recorder.count_under("reconnects:", "1006")
    recorder.counts["from_a_newer_worker"] = 3
    measured = recorder.measurement()
    assert undeclared_counts(measured.counts) == ["from_a_newer_worker"]
    counts = build_report(measured, run_info()).model_dump(mode="json")["counts"]
    assert counts["from_a_newer_worker"] == 3 and counts["reconnects"] == 0
    # The recorder has no counter for a name the figures do not declare.
    with pytest.raises(KeyError):
        Recorder().counts["no_such_count"] += 1


def test_every_count_the_code_names_is_declared() -> None:
    """``counts["name"]`` anywhere in loadtest/ names a count or integrity figure."""
    root = Path(__file__).resolve().parents[3] / "loadtest"
    named = {
        (path.name, name)
        for path in root.rglob("*.py")
        if "mockllm" not in path.parts and "sim" not in path.parts
        for name in re.findall(r"""\bcounts\[["']([a-z_]+)["']\]""", path.read_text())
    }
    assert named, "the scan found no count at all"
    declared = set(names("counts")) | set(INTEGRITY)
    assert sorted(n for n in named if n[1] not in declared) == []


def test_the_time_series_columns_make_the_point_and_the_csv() -> None:
    from loadtest.core.figures import SERIES_LATENCIES
    from loadtest.core.series import COLUMNS
    from loadtest.report.model import SeriesPoint
    from loadtest.report.timeseries_csv import COLUMNS as CSV

    latencies = [f"{name}_{p}" for name in SERIES_LATENCIES for p in ("p50", "p95")]
    assert list(SeriesPoint.model_fields) == ["t", *(c.point for c in COLUMNS), *latencies]
    assert tuple(SeriesPoint.model_fields) == CSV


def test_replica_tallies_are_written_only_by_their_own_methods() -> None:
    root = Path(__file__).resolve().parents[3] / "loadtest"
    writes = [
        f"{path.name}: {line.strip()}"
        for path in root.rglob("*.py")
        if path.name != "replicas.py"
        for line in path.read_text().splitlines()
        if re.search(
            r"(replica|tally)\w*\.(streams|frames|events|errors|integrity)\b.*[+-]?=", line
        )
        and "==" not in line
    ]
    assert writes == []
