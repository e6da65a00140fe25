"""``report.html`` in a real browser (headless Chromium): it renders, offline, with its plots,
and no label of a plot covers another.

Slow (a browser start, a screenshot decoded in Python): runs in ``make test-all``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from loadtest.core.slo import SloCheck, SloResult
from loadtest.report.files import write_report_files
from loadtest.report.svg import PALETTE
from tests.integration.browser import browse, collisions, colours, label_boxes, png_rows
from tests.unit.report.reports import sample_report

pytestmark = pytest.mark.slow

WIDTH, HEIGHT = 1400, 3000
PLOTS = 8


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    report = sample_report(seeds=(1, 2, 3, 4, 5), frames=12)
    checks = [SloCheck(expr="time_to_first_output.p95 < 10ms", observed=15.0, passed=False)]
    report = report.model_copy(update={"slo": SloResult(passed=False, checks=checks)})
    directory = tmp_path_factory.mktemp("report")
    write_report_files(report, directory)
    return directory / "report.html"


def rgb(hex_colour: str) -> tuple[int, int, int]:
    value = int(hex_colour.lstrip("#"), 16)
    return value >> 16, (value >> 8) & 255, value & 255


def test_screenshot_shows_the_page_and_its_plots(chromium: str, page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    done = browse(
        chromium,
        tmp_path / "profile",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--screenshot={shot}",
        page.as_uri(),
    )
    assert shot.exists(), done.stderr[-2000:]
    data = shot.read_bytes()
    assert len(data) > 100_000, "a screenshot this small is a blank page"
    width, height, rows = png_rows(data)
    assert (width, height) == (WIDTH, HEIGHT)
    seen = colours(rows, len(rows[0]) // width)
    assert len(seen) > 1000, f"only {len(seen)} colours: text alone, no plots"
    # The plots' own colours (a line and a bar in the first two) are on screen.
    assert {rgb(PALETTE[0]), rgb(PALETTE[1])} <= seen


def test_the_rendered_dom_holds_every_plot(chromium: str, page: Path, tmp_path: Path) -> None:
    done = browse(chromium, tmp_path / "profile", "--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    plots = re.findall(r'<svg class="plot" data-plot="([a-z0-9_]+)"', dom)
    assert len(plots) == PLOTS and len(set(plots)) == PLOTS
    for name in plots:
        svg = re.search(rf'data-plot="{name}".*?</svg>', dom, re.S)
        assert svg and re.search(r'<(?:path class="line"|rect class="bar")', svg[0]), name
    assert "FAIL" in dom and "time_to_first_output.p95 &lt; 10ms" in dom


@pytest.mark.parametrize("width", [1400, 700])
def test_no_label_of_a_plot_covers_another(
    chromium: str, page: Path, tmp_path: Path, width: int
) -> None:
    """Two columns of plots and one (the page's narrow layout): the texts' boxes as Chromium
    drew them; a screenshot of the page is kept in tmp_path."""
    plots = label_boxes(chromium, page, tmp_path, width)
    assert len(plots) == PLOTS
    assert all(plot["texts"] for plot in plots)
    found = [c for plot in plots for c in collisions(plot)]
    shot = tmp_path / f"report-{width}.png"
    browse(chromium, tmp_path / "shot", f"--window-size={width},{HEIGHT}", f"--screenshot={shot}",
           page.as_uri())  # fmt: skip
    assert shot.exists()
    print(f"screenshot: {shot}")
    assert not found, found


@pytest.mark.parametrize("width", [1400, 700])
def test_a_typical_turns_timeline_has_no_label_over_another(
    chromium: str, tmp_path: Path, width: int
) -> None:
    """An agent run's page: its typical turn, drawn as a timeline of steps and tools."""
    from loadtest.report.build import build_report
    from tests.unit.agent_events import agent_recorder
    from tests.unit.samples import run_info

    directory = tmp_path / "agents"
    write_report_files(build_report(agent_recorder().measurement(), run_info()), directory)
    plots = label_boxes(chromium, directory / "report.html", tmp_path, width)
    (timeline,) = [plot for plot in plots if plot["plot"] == "typical_turn"]
    assert {t["text"] for t in timeline["texts"]} >= {"step 1", "tool: spawn_agent #2"}
    assert not collisions(timeline), collisions(timeline)
