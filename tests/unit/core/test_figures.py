"""The one list of figures and what is built from it agree: a count the recorder keeps has
its field in the report, and every figure has a formula a reader can see."""

from __future__ import annotations

from loadtest.core.figures import FIGURES, INTEGRITY, LATENCIES, RATES, names, slo_paths
from loadtest.core.recorder import Recorder
from loadtest.report.model import Counts, Integrity, Rates


def test_the_reports_typed_sections_are_the_figures() -> None:
    assert set(Counts.model_fields) == set(names("counts"))
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
