"""Headless Chromium for the browser tests: found, or installed from Debian's archive when
missing and we are root; kept off the network (the pages must not need it)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest


def chromium_or_skip() -> str:
    """The browser, installed from Debian's archive when missing and we may (the
    ``chromium`` fixture, in conftest.py)."""
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


#: Run in the page once it is laid out: every plot's text boxes as the browser drew them.
_MEASURE = """<script>
const plots = [];
for (const svg of document.querySelectorAll('svg.plot')) {
  const box = r => [r.left, r.top, r.right, r.bottom];
  const texts = [...svg.querySelectorAll('text')].map(
    t => ({text: t.textContent, box: box(t.getBoundingClientRect())}));
  plots.push({plot: svg.dataset.plot, box: box(svg.getBoundingClientRect()), texts});
}
const out = document.createElement('pre');
out.id = 'chatload-label-boxes';
out.textContent = JSON.stringify(plots);
document.body.appendChild(out);
</script>"""


def label_boxes(chromium: str, page: Path, work: Path, width: int) -> list[dict[str, Any]]:
    """Every ``svg.plot`` of ``page`` in a ``width`` px wide window: its box and its texts'
    boxes (CSS px), measured by Chromium itself (``getBoundingClientRect``)."""
    measured = page.with_name(f"measured-{width}-{page.name}")
    measured.write_text(page.read_text().replace("</body>", _MEASURE + "</body>"))
    done = browse(
        chromium,
        work / f"profile-{width}",
        f"--window-size={width},2000",
        "--dump-dom",
        measured.as_uri(),
    )
    measured.unlink()
    found = re.search(r'<pre id="chatload-label-boxes">([^<]*)</pre>', done.stdout)
    assert found, done.stderr[-2000:]
    plots: list[dict[str, Any]] = json.loads(html.unescape(found[1]))
    return plots


def collisions(plot: dict[str, Any], slack: float = 1.0) -> list[str]:
    """Texts of one plot that overlap another by more than ``slack`` px both ways, or stick
    out of the plot's box by more than ``slack``."""
    found = []
    texts = [t for t in plot["texts"] if t["text"].strip()]
    for i, a in enumerate(texts):
        ax0, ay0, ax1, ay1 = a["box"]
        for b in texts[i + 1 :]:
            bx0, by0, bx1, by1 = b["box"]
            if min(ax1, bx1) - max(ax0, bx0) > slack and min(ay1, by1) - max(ay0, by0) > slack:
                found.append(f"{plot['plot']}: {a['text']!r} covers {b['text']!r}")
        px0, py0, px1, py1 = plot["box"]
        if ax0 < px0 - slack or ax1 > px1 + slack or ay0 < py0 - slack or ay1 > py1 + slack:
            found.append(f"{plot['plot']}: {a['text']!r} runs out of the plot")
    return found
