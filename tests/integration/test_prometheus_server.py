"""A real Prometheus scrapes ``chatload run --prometheus``: the exposition passes
``promtool check metrics``, and PromQL over what was scraped gives the report's figures:
counts and stage failures exactly (``--prometheus-wait`` keeps the final figures up for the
last scrape), TTFT percentiles, whole and of the initial phase, within Coder's buckets, the turn
rate within a scrape interval."""

from __future__ import annotations

import subprocess
from datetime import datetime

import pytest

from loadtest.protocol.scaletest import FAILURE_STAGES
from loadtest.runner.prometheus import STAGE_MAP
from tests.integration.prometheus_server import (
    SCRAPE_S,
    Prometheus,
    ScrapedRun,
    promtool_or_skip,
)

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
    by_stage: dict[str, float] = {}
    for row in report["errors"]:
        by_stage[row["stage"]] = by_stage.get(row["stage"], 0) + row["count"]
    for expr, expected in (
        ("sum(coderd_scaletest_chat_turns_completed_total)", counts["turns_completed"]),
        ("sum(chatload_turns_started_total)", counts["turns_started"]),
        (
            'sum(coderd_scaletest_chat_terminal_status_total{status="error"})',
            by_stage["status_error"],
        ),
        ("sum(chatload_events_total)", counts["events"]),
        ("sum(chatload_frames_total)", counts["frames"]),
        (f"sum({TTFT}_count)", report["latency_ms"]["time_to_first_output"]["count"]),
    ):
        assert prom.value(expr, at) == expected, expr
    # Every scaletest series is the run's, by its id.
    assert prom.by(
        "count by (run_id) ({__name__=~'coderd_scaletest_.*'})", "run_id", at
    ).keys() == {report["run"]["run_id"]}
    # Failures: ours by our stage, and on scaletest's five stages as mapped.
    ours = prom.by("sum by (stage) (chatload_stage_failures_total)", "stage", at)
    assert ours == by_stage and sum(ours.values()) > 0
    theirs: dict[str, float] = dict.fromkeys(FAILURE_STAGES, 0.0)
    for stage, n in by_stage.items():
        if stage in STAGE_MAP:
            theirs[STAGE_MAP[stage]] += n
    assert (
        prom.by("sum by (stage) (coderd_scaletest_chat_stage_failures_total)", "stage", at)
        == theirs
    )
    assert theirs["status_error"] > 0 and theirs["stream_ended_early"] > 0
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


def within_a_bucket(
    prom: Prometheus, selector: str, q: float, observed_ms: float, at: float
) -> None:
    """The report's percentile lies in the bucket that holds its rank by Prometheus' own
    counts, and ``histogram_quantile``'s estimate in that bucket or, where the two rank
    conventions straddle a boundary, the next: the report ranks ``round(q * n)`` (HDR),
    Prometheus ``q * n`` (the first bucket whose count reaches it)."""
    cumulative = sorted(
        (float(le), n) for le, n in prom.by(f"sum by (le) ({selector})", "le", at).items()
    )
    n = cumulative[-1][1]

    def bucket_of(rank: float) -> tuple[float, float]:
        index = next(i for i, (_, seen) in enumerate(cumulative) if seen >= rank)
        return (cumulative[index - 1][0] if index else 0.0), cumulative[index][0]

    lower, upper = bucket_of(max(1, int(q * n + 0.5)))
    observed = observed_ms / 1000
    assert lower * (1 - HDR_SLACK) <= observed <= upper * (1 + HDR_SLACK), (
        selector, q, observed, (lower, upper),
    )  # fmt: skip
    estimate = prom.value(f"histogram_quantile({q}, sum by (le) ({selector}))", at)
    _, next_upper = bucket_of(max(1, int(q * n + 0.5)) + 1) if q * n + 0.5 < n else (0, upper)
    assert lower * (1 - HDR_SLACK) <= estimate <= max(upper, next_upper) * (1 + HDR_SLACK), (
        selector, q, estimate, (lower, upper, next_upper),
    )  # fmt: skip


def test_ttft_percentiles_by_phase_match_the_report_within_a_bucket(scraped: ScrapedRun) -> None:
    prom, at, latency = scraped.prometheus, scraped.last, scraped.report["latency_ms"]
    whole, initial = latency["time_to_first_output"], latency["time_to_first_output_initial"]
    per_phase = prom.by(f"sum by (phase) ({TTFT}_count)", "phase", at)
    assert per_phase == {
        "initial": initial["count"],
        "follow_up": whole["count"] - initial["count"],
    }
    assert initial["count"] > 0 and per_phase["follow_up"] > 0
    for q, key in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        within_a_bucket(prom, f"{TTFT}_bucket", q, whole[key], at)
        within_a_bucket(prom, f'{TTFT}_bucket{{phase="initial"}}', q, initial[key], at)
    # The spread covers several buckets: the check is not one bucket holding everything.
    filled = prom.by(f"sum by (le) ({TTFT}_bucket)", "le", at)
    assert len({n for n in filled.values() if 0 < n < whole["count"]}) >= 2, filled


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
