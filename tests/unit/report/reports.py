"""Made-up reports for the report writers' tests, and readers of the pages they draw."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from loadtest.core.recorder import Recorder
from loadtest.core.slo import SloCheck, SloResult
from loadtest.report.build import build_report
from loadtest.report.model import Report
from tests.unit.samples import feed_some, run_info

REPO = Path(__file__).resolve().parents[3]
NUMBER = r"-?\d+(?:\.\d+)?"


def sample_report(seeds: tuple[int, ...] = (1, 2, 3), frames: int = 6) -> Report:
    """A real run's report: turns that fail and retry, bad frames, a series with gaps."""
    recorder = Recorder(origin_ns=0, origin_epoch_s=run_info().started_at.timestamp())
    for seed in seeds:
        feed_some(recorder, seed, frames)
    return build_report(recorder.measurement(), run_info(duration=8.0))


def with_run(report: Report, **changes: object) -> Report:
    return report.model_copy(update={"run": report.run.model_copy(update=changes)})


def plot(page: str, name: str) -> str:
    """The one ``<svg>`` of a named plot."""
    found = re.findall(rf'<svg class="plot" data-plot="{name}".*?</svg>', page, re.S)
    assert len(found) == 1, f"plot {name}: {len(found)} found"
    return found[0]


def vertices(svg: str, series: str) -> list[tuple[float, float]]:
    match = re.search(rf'<path class="line" data-series="{re.escape(series)}" d="([^"]*)"', svg)
    assert match, f"no line for {series}"
    return [(float(x), float(y)) for x, y in re.findall(rf"[ML]({NUMBER}),({NUMBER})", match[1])]


def bar_heights(svg: str) -> list[float]:
    return [float(h) for h in re.findall(rf'<rect class="bar"[^>]*height="({NUMBER})"', svg)]


def slo(report: Report, passed: bool) -> Report:
    checks = [
        SloCheck(expr="time_to_first_output.p95 < 2000ms", observed=13.0, passed=True),
        SloCheck(expr="error_rate < 1%", observed=0.25, passed=passed),
    ]
    return report.model_copy(update={"slo": SloResult(passed=passed, checks=checks)})


def chatload(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadtest.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
