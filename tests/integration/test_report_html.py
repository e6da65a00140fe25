"""``report.html`` in a real browser (headless Chromium): it renders, offline, with its plots.

Slow (a browser start, a screenshot decoded in Python): runs in ``make test-all``.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from loadtest.core.slo import SloCheck, SloResult
from loadtest.report.files import write_report_files
from loadtest.report.svg import PALETTE
from tests.unit.report.test_writers import sample_report

pytestmark = pytest.mark.slow

WIDTH, HEIGHT = 1400, 3000
PLOTS = 8


@pytest.fixture(scope="module")
def chromium() -> str:
    """The browser, installed from Debian's archive when missing and we may."""
    found = shutil.which("chromium")
    if found:
        return found
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip(
            "chromium is not installed and installing it needs root: apt-get install chromium"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        if done.returncode:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
            pytest.skip(f"could not install chromium ({' '.join(command)}): {tail}")
    found = shutil.which("chromium")
    assert found, "apt-get installed chromium, but it is not on PATH"
    return found


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    report = sample_report(seeds=(1, 2, 3, 4, 5), frames=12)
    checks = [SloCheck(expr="time_to_first_output.p95 < 10ms", observed=15.0, passed=False)]
    report = report.model_copy(update={"slo": SloResult(passed=False, checks=checks)})
    directory = tmp_path_factory.mktemp("report")
    write_report_files(report, directory)
    return directory / "report.html"


def browse(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium, kept off the network: the page must not need it."""
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def png_rows(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB(A) rows of an 8-bit, non-interlaced PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, []
    header = b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat.append(body)
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and color in (2, 6) and not interlace, "an unexpected PNG layout"
    bpp = 3 if color == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(b"".join(idat))
    rows, prev = [], bytearray(stride)
    for r in range(height):
        start = r * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for x in range(bpp, stride):
                line[x] = (line[x] + line[x - bpp]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev, strict=True))
        elif kind in (3, 4):
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0
                b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
                if kind == 3:
                    line[x] = (line[x] + (a + b) // 2) & 255
                    continue
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, [bytes(row) for row in rows]


def colours(rows: list[bytes], bpp: int) -> set[tuple[int, int, int]]:
    seen: set[tuple[int, int, int]] = set()
    for row in rows:
        seen.update(zip(row[0::bpp], row[1::bpp], row[2::bpp], strict=True))
    return seen


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
