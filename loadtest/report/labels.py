"""Where a plot's text goes: labels' widths estimated, and labels laid out so none covers another.

Everything is in the plot's viewBox units, the units its font sizes are in too, so a layout
that holds at one size holds at every zoom and window width. Widths are estimated from
DejaVu Sans, the widest of the page's fonts (system-ui, Helvetica and Arial are narrower):
an estimate may be long, never short, so labels placed apart stay apart in any of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: Glyph advance in em, by class, rounded up from DejaVu Sans (measured in Chromium: digits
#: 0.636, lower case 0.564 on average, capitals 0.672, ``W`` 0.99, ``m`` 0.974).
NARROW = frozenset("fijlrt.,:;'|!()[]{} ")
WIDE = frozenset("mwMW@%")
EM_NARROW, EM_WIDE, EM_UPPER, EM_OTHER = 0.4, 1.02, 0.72, 0.64
#: Semibold text (markers) is this much wider.
BOLD = 1.1
#: Ascent and descent of a line of text, in em, around its baseline.
ASCENT, DESCENT = 0.95, 0.3
#: Room between a marker's line and its label, and between two labels.
PAD, GAP = 4.0, 4.0
ELLIPSIS = "…"


def text_width(text: str, size: float, bold: bool = False) -> float:
    """An estimate of ``text``'s width at font ``size``, never below what the browser draws."""
    em = 0.0
    for char in text:
        if char in NARROW:
            em += EM_NARROW
        elif char in WIDE:
            em += EM_WIDE
        elif char.isupper():
            em += EM_UPPER
        else:
            em += EM_OTHER
    return em * size * (BOLD if bold else 1.0)


def fit(text: str, room: float, size: float, bold: bool = False) -> str:
    """``text``, cut short with an ellipsis if it is wider than ``room``."""
    if text_width(text, size, bold) <= room:
        return text
    while text and text_width(text + ELLIPSIS, size, bold) > room:
        text = text[:-1]
    return text + ELLIPSIS


@dataclass(frozen=True, slots=True)
class Box:
    """A label's extent: x from ``x0`` to ``x1``, y from ``y0`` (top) to ``y1``."""

    x0: float
    y0: float
    x1: float
    y1: float

    def overlaps(self, other: Box, gap: float = 0.0) -> bool:
        return (
            self.x0 < other.x1 + gap
            and other.x0 < self.x1 + gap
            and self.y0 < other.y1
            and other.y0 < self.y1
        )


def text_box(x: float, y: float, text: str, size: float, anchor: str, bold: bool = False) -> Box:
    """The box of ``text`` drawn at (``x``, baseline ``y``) with SVG's ``text-anchor``."""
    width = text_width(text, size, bold)
    x0 = {"start": x, "middle": x - width / 2, "end": x - width}[anchor]
    return Box(x0, y - ASCENT * size, x0 + width, y + DESCENT * size)


@dataclass(frozen=True, slots=True)
class Placed:
    """A label laid out: its text (maybe shortened), anchor point, ``text-anchor``, row."""

    text: str
    x: float
    y: float
    anchor: str
    row: int


def place_marker_labels(
    marks: Sequence[tuple[float, str]],
    lo: float,
    hi: float,
    top: float,
    size: float,
    bold: bool = True,
    row_height: float | None = None,
) -> list[Placed]:
    """Labels for vertical lines at x ``marks`` between ``lo`` and ``hi``: each beside its
    line (right of it, or left where the next line is too close or the right edge too near),
    in the first row from ``top`` down where it covers no other label. One per mark, in order."""
    step = row_height if row_height is not None else (ASCENT + DESCENT) * size + 2
    order = sorted(range(len(marks)), key=lambda i: marks[i][0])
    placed: list[Placed | None] = [None] * len(marks)
    rows: list[list[tuple[float, float]]] = []
    for k, i in enumerate(order):
        x, text = marks[i]
        text = fit(text, hi - lo, size, bold)
        width = text_width(text, size, bold)
        right = (x + PAD, "start")
        left = (x - PAD - width, "end")
        following = marks[order[k + 1]][0] if k + 1 < len(order) else None
        crowded = following is not None and following - x < width + 2 * PAD + GAP
        sides = [
            s for s in ((left, right) if crowded else (right, left)) if _inside(s, width, lo, hi)
        ]
        if not sides:  # wider than either side: as near its line as the plot allows
            start = min(max(lo, x - width / 2), hi - width)
            sides = [((start, "start"))]
        row = 0
        while True:
            if row == len(rows):
                rows.append([])
            spans = rows[row]
            free = [
                (x0, anchor)
                for (x0, anchor) in sides
                if all(x0 + width + GAP <= a or x0 >= b + GAP for a, b in spans)
            ]
            if free:
                x0, anchor = free[0]
                spans.append((x0, x0 + width))
                at = x0 if anchor == "start" else x0 + width
                placed[i] = Placed(text, at, top + row * step + ASCENT * size, anchor, row)
                break
            row += 1
    return [p for p in placed if p is not None]


def _inside(side: tuple[float, str], width: float, lo: float, hi: float) -> bool:
    x0, _ = side
    return lo <= x0 and x0 + width <= hi


def legend_rows(widths: Sequence[float], lo: float, hi: float) -> list[list[int]]:
    """Legend entries of these widths in rows from ``lo`` to ``hi``: a new row where the
    next entry would run past ``hi``. Indexes of the entries, row by row."""
    rows: list[list[int]] = [[]]
    x = lo
    for i, width in enumerate(widths):
        if rows[-1] and x + width > hi:
            rows.append([])
            x = lo
        rows[-1].append(i)
        x += width
    return rows


def overlapping(boxes: Sequence[Box], gap: float = 0.0) -> list[tuple[int, int]]:
    """Every pair of boxes that overlap (indexes)."""
    return [
        (i, j)
        for i in range(len(boxes))
        for j in range(i + 1, len(boxes))
        if boxes[i].overlaps(boxes[j], gap)
    ]
