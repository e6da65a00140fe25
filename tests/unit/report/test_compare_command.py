"""``chatload compare``: exact changes, each figure's better direction, n/a never a regression,
and the exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.core.figures import COMPARED, LATENCIES
from loadtest.report.compare_command import Row, compare
from loadtest.report.files import write_json
from loadtest.report.model import Rates, Report, Summary
from tests.unit.report.reports import REPO, sample_report

BASE_RATES = {
    "frames_per_s": 10.0,
    "events_per_s": 100.0,
    "bytes_per_s": 1000.0,
    "turns_per_s": 5.0,
    "error_rate": 0.02,
    "retry_rate": 0.0,
    "goodput_per_s": 4.0,
}


def summary(p50: float = 100.0, p95: float = 200.0, p99: float = 400.0, count: int = 10) -> Summary:
    return Summary(
        count=count, min=1.0, mean=p50, p50=p50, p90=p95, p95=p95, p99=p99, p999=p99, max=p99
    )


def made_up(
    latency: dict[str, Summary] | None = None, turns_started: int = 100, **rates: float
) -> Report:
    """A real report whose headline figures are replaced by round numbers."""
    real = sample_report()
    return real.model_copy(
        update={
            "latency_ms": {name: summary() for name in LATENCIES} | (latency or {}),
            "rates": Rates(**(BASE_RATES | rates)),
            "counts": real.counts.model_copy(update={"turns_started": turns_started}),
        }
    )


def row(rows: list[Row], figure: str) -> Row:
    return next(r for r in rows if r.figure == figure)


def test_every_headline_figure_is_compared_in_order() -> None:
    rows = compare(made_up(), made_up(), 10.0)
    assert [r.figure for r in rows] == [f for f, _ in COMPARED]
    assert len(rows) == 15 * 3 + 5  # 15 latencies (5 of agents) x 3 percentiles, 5 rates
    assert {r.verdict for r in rows} == {"same"}
    assert {r.change_pct for r in rows if r.figure != "retry_rate"} == {0.0}


def test_exact_change_and_threshold() -> None:
    base = made_up()
    new = made_up(latency={"time_to_first_output": summary(p50=110.0, p95=250.0, p99=300.0)})
    rows = compare(base, new, 10.0)
    p50, p95, p99 = (row(rows, f"time_to_first_output.{p}") for p in ("p50", "p95", "p99"))
    assert (p50.base, p50.new, p50.change_pct, p50.verdict) == (100.0, 110.0, 10.0, "worse")
    assert (p95.change_pct, p95.verdict) == (25.0, "REGRESSION")
    assert (p99.change_pct, p99.verdict) == (-25.0, "better")
    assert row(compare(base, new, 30.0), "time_to_first_output.p95").verdict == "worse"
    assert row(compare(base, new, 5.0), "time_to_first_output.p50").verdict == "REGRESSION"


@pytest.mark.parametrize(
    ("figure", "lower", "higher"),
    [
        ("events_per_s", "REGRESSION", "better"),
        ("turns_per_s", "REGRESSION", "better"),
        ("goodput_per_s", "REGRESSION", "better"),
        ("error_rate", "better", "REGRESSION"),
    ],
)
def test_direction_per_figure(figure: str, lower: str, higher: str) -> None:
    base = made_up()
    value = BASE_RATES[figure]
    down = row(compare(base, made_up(**{figure: value * 0.5}), 10.0), figure)
    up = row(compare(base, made_up(**{figure: value * 1.5}), 10.0), figure)
    assert (down.change_pct, down.verdict) == (pytest.approx(-50.0), lower)
    assert (up.change_pct, up.verdict) == (pytest.approx(50.0), higher)


def test_ratios_also_need_an_absolute_rise() -> None:
    def verdict(base: float, new: float, limit: float = 10.0) -> str:
        rows = compare(made_up(retry_rate=base), made_up(retry_rate=new), limit)
        return row(rows, "retry_rate").verdict

    # From 0 there is no relative change: more than limit/100 points (0.1 at 10 %) decides.
    assert verdict(0.0, 0.0005) == "worse"
    assert verdict(0.0, 0.002) == "REGRESSION"
    assert verdict(0.0, 0.002, limit=50.0) == "worse"  # 0.2 points < 0.5 points
    # 0.01 % -> 0.02 % doubles, but by 0.01 points only.
    assert verdict(0.0001, 0.0002) == "worse"
    assert verdict(0.02, 0.0215) == "worse"  # +7.5 %
    assert verdict(0.02, 0.023) == "REGRESSION"  # +15 %, +0.3 points
    assert row(compare(made_up(), made_up(retry_rate=0.002), 10.0), "retry_rate").change_pct is None


def test_the_table_shows_a_rise_from_zero_in_points(tmp_path: Path) -> None:
    base, new = tmp_path / "base.json", tmp_path / "new.json"
    write_json(made_up(), base)
    write_json(made_up(retry_rate=0.003), new)
    done = chatload(base, new)
    line = next(x for x in done.stdout.splitlines() if x.startswith("retry_rate"))
    assert " ".join(line.split()) == "retry_rate 0.00 % 0.30 % +0.30 points REGRESSION"


def test_missing_or_unmeasured_figures_are_na_and_never_regress() -> None:
    latency = {name: summary() for name in LATENCIES}
    del latency["stream_connect_latency"]
    # Much slower, but measured by no turn: not a regression.
    unmeasured = summary(p50=9e9, p95=9e9, p99=9e9, count=0)
    new = made_up().model_copy(update={"latency_ms": latency | {"chat_create_latency": unmeasured}})
    rows = compare(made_up(), new, 10.0)
    for name in ("chat_create_latency", "stream_connect_latency"):
        for p in ("p50", "p95", "p99"):
            r = row(rows, f"{name}.{p}")
            assert (r.base, r.new, r.change_pct, r.verdict) == (
                summary().model_dump()[p],
                None,
                None,
                "n/a",
            )
    # A run that started no turn measured no rate.
    idle = compare(made_up(), made_up(turns_started=0, events_per_s=0.0), 10.0)
    assert row(idle, "events_per_s").verdict == "n/a"
    assert row(idle, "error_rate").verdict == "n/a"
    assert all(r.verdict != "REGRESSION" for r in rows + idle)


def chatload(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadtest.cli", "compare", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def test_exit_codes_by_threshold(tmp_path: Path) -> None:
    base, new = tmp_path / "base.json", tmp_path / "new.json"
    write_json(made_up(), base)
    write_json(made_up(latency={"time_to_terminal_status": summary(p95=230.0)}), new)

    done = chatload(base, new)
    assert done.returncode == 1, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("time_to_terminal_status.p95"))
    expected = "time_to_terminal_status.p95 (E2E) 200 ms 230 ms +15.0 % REGRESSION"
    assert " ".join(line.split()) == expected
    assert "regressed past 10 %: time_to_terminal_status.p95" in done.stdout

    assert chatload(base, new, "--max-regression", "20").returncode == 0
    assert chatload(base, new, "--max-regression", "15%").returncode == 0
    assert chatload(base, base).returncode == 0


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "no such file"), (b"nope", "not JSON"), (b'{"schema_version": 9}', "schema_version")],
)
def test_unreadable_input_exits_2(tmp_path: Path, content: bytes | None, problem: str) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    write_json(made_up(), good)
    if content is not None:
        bad.write_bytes(content)
    for args in ((good, bad), (bad, good)):
        done = chatload(*args)
        assert done.returncode == 2
        assert str(bad) in done.stderr and problem in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and not done.stdout


def test_a_negative_threshold_is_bad_usage(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    write_json(made_up(), good)
    done = chatload(good, good, "--max-regression", "-5")
    assert done.returncode == 2 and "--max-regression" in done.stderr
