"""A real Prometheus scrapes ``chatload run --prometheus``: the exposition passes
``promtool check metrics``, and PromQL over what was scraped gives the report's figures:
counts exactly (``--prometheus-wait`` keeps the final figures up for the last scrape),
TTFT percentiles within the histogram's bucket, the turn rate within a scrape interval."""

from __future__ import annotations

import math
import subprocess
from datetime import datetime

import pytest

from tests.integration.prometheus_server import SCRAPE_S, ScrapedRun, promtool_or_skip

TTFT = "coderd_scaletest_chat_time_to_first_output_seconds"
#: How far an HDR value may sit beyond the bucket bound it was counted under (the recorder's
#: values are exact to 1 part in 1000; /metrics buckets them by their highest equivalent).
HDR_SLACK = 0.002


@pytest.mark.parametrize("source", ["chatload", "simulator"])
def test_promtool_passes_on_the_exposition(scraped: ScrapedRun, source: str) -> None:
    text = scraped.exposition if source == "chatload" else scraped.sim_exposition
    assert "# TYPE" in text
    done = subprocess.run(
        [promtool_or_skip(), "check", "metrics"],
        input=text, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_last_scrape_holds_the_reports_counts(scraped: ScrapedRun) -> None:
    prom, report, at = scraped.prometheus, scraped.report, scraped.last
    counts = report["counts"]
    assert counts["turns_completed"] > 0 and counts["turns_failed"] > 0  # the faults bit
    for expr, expected in (
        ("sum(coderd_scaletest_chat_turns_completed_total)", counts["turns_completed"]),
        ("sum(chatload_turns_started_total)", counts["turns_started"]),
        (
            'sum(coderd_scaletest_chat_terminal_status_total{status="error"})',
            counts["turns_failed"],
        ),
        ("sum(chatload_events_total)", counts["events"]),
        ("sum(chatload_frames_total)", counts["frames"]),
        (f"sum({TTFT}_count)", report["latency_ms"]["time_to_first_output"]["count"]),
    ):
        assert prom.value(expr, at) == expected, expr
    by_stage: dict[str, float] = {}
    for row in report["errors"]:
        by_stage[row["stage"]] = by_stage.get(row["stage"], 0) + row["count"]
    failures = prom.by("sum by (stage) (coderd_scaletest_chat_stage_failures_total)", "stage", at)
    # The totals, and the stage Coder's scaletest and chatload both name (status_error).
    assert sum(failures.values()) == sum(by_stage.values()) > 0
    assert failures["status_error"] == by_stage["status_error"] > 0
    assert prom.by("sum by (kind) (chatload_retries_total)", "kind", at) == {
        kind: float(n) for kind, n in report["retries_by_kind"].items()
    }
    assert prom.by("sum by (cause) (chatload_reconnects_total)", "cause", at) == {
        cause: float(n) for cause, n in report["reconnects_by_cause"].items()
    }
    integrity = prom.by("sum by (kind) (chatload_integrity_total)", "kind", at)
    assert integrity == {
        kind: float(n) for kind, n in report["integrity"].items() if kind != "turns_checked"
    }
    assert sum(integrity.values()) > 0


def test_ttft_percentiles_by_phase_match_the_report_within_a_bucket(scraped: ScrapedRun) -> None:
    prom, at = scraped.prometheus, scraped.last
    summary = scraped.report["latency_ms"]["time_to_first_output"]
    bounds = sorted(
        float(le) for le in prom.by(f"sum by (le) ({TTFT}_bucket)", "le", at) if le != "+Inf"
    )
    for q, key in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        estimate = prom.value(f"histogram_quantile({q}, sum by (le) ({TTFT}_bucket))", at)
        upper = next(b for b in bounds if b >= estimate)
        lower = max((b for b in bounds if b < upper), default=0.0)
        observed = summary[key] / 1000
        assert lower * (1 - HDR_SLACK) <= observed <= upper * (1 + HDR_SLACK), (
            key, observed, estimate, (lower, upper),
        )  # fmt: skip
        # By phase: every phase's estimate is a figure, and the phases hold every turn.
        by_phase = prom.by(
            f"histogram_quantile({q}, sum by (le, phase) ({TTFT}_bucket))", "phase", at
        )
        assert by_phase and all(math.isfinite(v) for v in by_phase.values()), by_phase
    per_phase = prom.by(f"sum by (phase) ({TTFT}_count)", "phase", at)
    # Before issue 22 the run exports one phase "all"; after it, "initial" and "follow_up".
    assert set(per_phase) in ({"all"}, {"initial", "follow_up"}), per_phase
    assert sum(per_phase.values()) == summary["count"]


def test_the_turn_rate_matches_the_report_within_a_scrape_interval(scraped: ScrapedRun) -> None:
    run = scraped.report["run"]
    started = datetime.fromisoformat(run["started_at"]).timestamp()
    ended = datetime.fromisoformat(run["ended_at"]).timestamp()
    window = ended - started
    rate = scraped.prometheus.value(
        f"sum(rate(coderd_scaletest_chat_turns_completed_total[{round(window * 1000)}ms]))", ended
    )
    expected = scraped.report["rates"]["turns_per_s"]
    print(f"turns/s: PromQL {rate:.3f}, report {expected:.3f}, over {window:.2f} s")
    # rate() sees the samples inside the window and extrapolates to its edges: at most a
    # scrape interval short at each end.
    assert abs(rate - expected) <= expected * 2 * SCRAPE_S / window, (rate, expected, window)
