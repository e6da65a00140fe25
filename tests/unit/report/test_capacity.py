"""capacity.json, its page and summary, and ``chatload compare`` of two searches."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from loadtest.report.capacity import (
    CapacityReport,
    CapacityStep,
    load_capacity,
    render_html,
    verdict_line,
    write_capacity_files,
)
from loadtest.report.compare_command import main as compare_main

SLO = "time_to_first_output.p95 < 400ms"


def search(feasible: float | None, boundary: str = "cliff") -> CapacityReport:
    steps = [
        CapacityStep(
            load=load,
            repeat=0,
            passed=feasible is not None and load <= feasible,
            report=f"steps/{load:g}/report.json",
            figures={
                "time_to_first_output.p95": 150.0 if load <= (feasible or 0) else 900.0,
                "turns_per_s": load / 2,
                "goodput_per_s": load / 2 if load <= (feasible or 0) else 0.0,
            },
        )
        for load in (2, 4, 8, 16)
    ]
    return CapacityReport(
        dimension="users",
        feasible_max=feasible,
        infeasible_min=None if feasible is None else feasible * 2,
        binding_slo=SLO,
        boundary=boundary,  # type: ignore[arg-type]
        steps=steps,
        stopped_because="done",
        slos=[SLO, "error_rate < 1%"],
        target="http://127.0.0.1:1/<script>",
    )


def test_files_round_trip_and_say_what_was_found(tmp_path: Path) -> None:
    report = search(8)
    paths = write_capacity_files(report, tmp_path)
    assert [p.name for p in paths] == ["capacity.json", "capacity.html", "summary.md"]
    assert load_capacity(tmp_path / "capacity.json") == report
    assert verdict_line(report) == f"capacity 8 users: at 16 users {SLO} broke (cliff boundary)"
    page = render_html(report)
    assert "<script>" not in page and "&lt;script&gt;" in page  # outside text is escaped
    assert page.count("<svg") == 2  # the SLO figure, and throughput
    assert "feasible max" in page and 'class="marker"' in page
    summary = (tmp_path / "summary.md").read_text()
    assert "| 16 | 0 | FAIL |" in summary


def compare(tmp_path: Path, base: CapacityReport, new: CapacityReport, limit: float) -> int:
    write_capacity_files(base, tmp_path / "base")
    write_capacity_files(new, tmp_path / "new")
    args = argparse.Namespace(
        base=tmp_path / "base" / "capacity.json",
        new=tmp_path / "new" / "capacity.json",
        max_regression=limit,
    )
    code: int = compare_main(args)
    return code


@pytest.mark.parametrize(
    ("base", "new", "code"),
    [(16, 15, 0), (16, 12, 1), (16, None, 1), (None, 4, 0), (8, 16, 0)],
)
def test_compare_fails_when_feasible_max_fell_past_the_limit(
    tmp_path: Path, base: float | None, new: float | None, code: int
) -> None:
    assert compare(tmp_path, search(base), search(new), 10.0) == code
