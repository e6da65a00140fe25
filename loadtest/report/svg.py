"""Line and bar charts as inline SVG strings, so a report opens anywhere without a network.

Each chart is ``<svg class="plot" data-plot=NAME>`` with real marks (a ``<path>`` per line,
a ``<rect class="bar">`` per bar); its look comes from the page's stylesheet. Its text is laid
out by ``labels`` so that no label covers another (legends wrap, marker labels take rows).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

from loadtest.report.fmt import short
from loadtest.report.labels import fit, legend_rows, place_marker_labels, text_width

WIDTH, HEIGHT = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 20, 36, 46
#: Okabe-Ito: distinguishable with every common colour-vision deficiency.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#000000")
ROW = 22
MAX_BAR = 60
#: Font sizes (px, the page's stylesheet): ticks, values and markers; axis labels and legends.
SMALL, LABEL = 11, 12
#: A legend row's height; each row past the first moves the plot area down by one.
LEGEND_ROW = 16

Point = tuple[float, float | None]


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    #: (x, y); a ``None`` y is a gap (nothing measured then), not a zero.
    points: Sequence[Point]
    dashed: bool = False


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    #: Bars of one group share a colour and a legend entry.
    group: str = ""
    tip: str = ""


def step_for(span: float, count: int, mantissas: Sequence[float] = (1, 2, 2.5, 5)) -> float:
    """A round step (a mantissa times a power of ten) giving about ``count`` over ``span``."""
    raw = span / count if span > 0 else 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (*mantissas, 10) if m * magnitude >= raw * (1 - 1e-9))


def y_ticks(top: float, count: int = 5) -> list[float]:
    """Ticks from 0 up to the first tick at or above ``top``: the axis is never cut."""
    step = step_for(top if top > 0 else 1.0, count)
    n = max(1, math.ceil(top / step - 1e-9))
    return [round(i * step, 12) for i in range(n + 1)]


def x_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round values within [lo, hi]; no 2.5 steps, so whole seconds stay whole."""
    step = step_for(hi - lo, count, (1, 2, 5))
    first = math.ceil(lo / step - 1e-9)
    return [round(i * step, 12) for i in range(first, math.floor(hi / step + 1e-9) + 1)]


def _open(name: str, title: str, height: int) -> str:
    return (
        f'<svg class="plot" data-plot="{escape(name)}" viewBox="0 0 {WIDTH} {height}" '
        f'role="img" aria-label="{escape(title)}">'
    )


def _empty(name: str, title: str, text: str) -> str:
    middle = (TOP + HEIGHT - BOTTOM) // 2
    return (
        f'{_open(name, title, HEIGHT)}<text class="empty" x="{WIDTH / 2}" y="{middle}" '
        f'text-anchor="middle">{escape(text)}</text></svg>'
    )


def _legend(entries: Iterable[tuple[str, str, bool]], boxes: bool = False) -> tuple[str, float]:
    """Rows above the plot area: a swatch (a line, or a box for bars) and a name each, a new
    row where the next would not fit. The markup, and the plot area's top below it."""
    items = list(entries)
    if not items:
        return "", float(TOP)
    names = [fit(name, WIDTH - RIGHT - LEFT - 23, LABEL) for name, _, _ in items]
    widths = [23 + text_width(name, LABEL) + 18 for name in names]
    rows = legend_rows(widths, LEFT, WIDTH - RIGHT + 18)
    out = ['<g class="legend">']
    for r, row in enumerate(rows):
        x, dy = float(LEFT), r * LEGEND_ROW
        for i in row:
            (name, color, dashed), text = items[i], names[i]
            if boxes:
                out.append(
                    f'<rect x="{x + 4:.1f}" y="{8 + dy}" width="12" height="12" fill="{color}"/>'
                )
            else:
                dash = ' stroke-dasharray="6 4"' if dashed else ""
                out.append(
                    f'<line x1="{x:.1f}" y1="{14 + dy}" x2="{x + 18:.1f}" y2="{14 + dy}" '
                    f'stroke="{color}" stroke-width="3"{dash}/>'
                )
            tip = f"<title>{escape(name)}</title>" if text != name else ""
            out.append(f'<text x="{x + 23:.1f}" y="{18 + dy}">{escape(text)}{tip}</text>')
            x += widths[i]
    out.append("</g>")
    return "".join(out), float(TOP + LEGEND_ROW * (len(rows) - 1))


def _marker_labels(marks: Sequence[tuple[float, str]], top: float) -> str:
    """Labels of vertical marker lines at x: beside their lines, in rows, none over another;
    the right margin is theirs too (nothing else is written there)."""
    out = []
    for label, (_, text) in zip(
        place_marker_labels(marks, LEFT, WIDTH - 4, top + 2, SMALL), marks, strict=True
    ):
        tip = f"<title>{escape(text)}</title>" if label.text != text else ""
        out.append(
            f'<text class="marker" x="{label.x:.1f}" y="{label.y:.1f}" '
            f'text-anchor="{label.anchor}">{escape(label.text)}{tip}</text>'
        )
    return "".join(out)


def _frame(x_label: str, y_label: str, height: int, top: float = TOP) -> str:
    bottom = height - BOTTOM
    return (
        f'<line class="axis" x1="{LEFT}" y1="{top}" x2="{LEFT}" y2="{bottom}"/>'
        f'<line class="axis" x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}"/>'
        f'<text class="label" x="{(LEFT + WIDTH - RIGHT) / 2}" y="{height - 8}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
        f'<text class="label" transform="translate(14 {(top + bottom) / 2}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )


def _value_grid(ticks: Sequence[float], scale: float, height: int) -> str:
    """Horizontal grid lines with their values on the left."""
    bottom = height - BOTTOM
    out = []
    for tick in ticks:
        y = bottom - tick * scale
        out.append(
            f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{short(tick)}</text>"
        )
    return "".join(out)


def _segments(points: Sequence[Point]) -> list[list[tuple[float, float]]]:
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, y))
    return [run for run in runs if run]


def line_chart(
    name: str,
    title: str,
    series: Sequence[Series],
    x_label: str,
    y_label: str,
    marks: Sequence[tuple[float, str]] = (),
) -> str:
    """Lines over a shared x axis; each series is one ``<path>`` with a vertex per point.
    ``marks``: labelled vertical lines at those x (a boundary, a limit)."""
    measured = [y for s in series for _, y in s.points if y is not None]
    if not measured:
        return _empty(name, title, "nothing measured")
    # The x axis spans every point, measured or not: charts of one series line up.
    lo = min(x for s in series for x, _ in s.points)
    hi = max(x for s in series for x, _ in s.points)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    values = y_ticks(max(measured))
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(series))]
    legend, top = _legend((s.name, c, s.dashed) for s, c in zip(series, colors, strict=True))
    bottom = HEIGHT - BOTTOM
    y_scale = (bottom - top) / values[-1]
    x_scale = (WIDTH - RIGHT - LEFT) / (hi - lo)
    out = [_open(name, title, HEIGHT), _value_grid(values, y_scale, HEIGHT)]
    for tick in x_ticks(lo, hi):
        x = LEFT + (tick - lo) * x_scale
        out.append(
            f'<line class="axis" x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}"/>'
            f'<text class="tick" x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">'
            f"{short(tick)}</text>"
        )
    out.append(_frame(x_label, y_label, HEIGHT, top))
    for line, color in zip(series, colors, strict=True):
        runs = _segments(line.points)
        if not runs:
            continue
        xy = [[(LEFT + (x - lo) * x_scale, bottom - y * y_scale) for x, y in run] for run in runs]
        d = " ".join("M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in run) for run in xy)
        dash = ' stroke-dasharray="6 4"' if line.dashed else ""
        out.append(
            f'<path class="line" data-series="{escape(line.name)}" d="{d}" '
            f'stroke="{color}"{dash}><title>{escape(line.name)}</title></path>'
        )
        # A point with no neighbour draws no line: mark it so it is seen.
        out.extend(
            f'<circle cx="{run[0][0]:.1f}" cy="{run[0][1]:.1f}" r="3" fill="{color}"/>'
            for run in xy
            if len(run) == 1
        )
    shown = [(LEFT + (x - lo) * x_scale, text) for x, text in marks if lo <= x <= hi]
    out.extend(
        f'<line class="marker" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}"/>'
        for x, _ in shown
    )
    out.extend([_marker_labels(shown, top), legend, "</svg>"])
    return "".join(out)


def _colors(bars: Sequence[Bar]) -> dict[str, str]:
    groups = dict.fromkeys(bar.group for bar in bars)
    return {group: PALETTE[i % len(PALETTE)] for i, group in enumerate(groups)}


def _legend_of(colors: dict[str, str]) -> tuple[str, float]:
    """A legend of the bars' groups where there are several; the plot area's top."""
    entries = ((group, color, False) for group, color in colors.items())
    return _legend(entries, boxes=True) if len(colors) > 1 else ("", float(TOP))


def bar_chart(
    name: str,
    title: str,
    bars: Sequence[Bar],
    x_label: str,
    y_label: str,
    markers: Sequence[tuple[str, int]] = (),
) -> str:
    """Vertical bars, one per category in order; ``markers`` label bars (e.g. ``p95``)."""
    if not bars:
        return _empty(name, title, "nothing measured")
    values = y_ticks(max(bar.value for bar in bars))
    colors = _colors(bars)
    legend, top = _legend_of(colors)
    bottom = HEIGHT - BOTTOM
    y_scale = (bottom - top) / values[-1]
    band = (WIDTH - RIGHT - LEFT) / len(bars)
    width = min(band * 0.8, MAX_BAR)
    # A category label every so many bars: as many as fit side by side.
    widest = max(text_width(bar.label, SMALL) for bar in bars) + 6
    every = max(1, math.ceil(widest / band))
    out = [_open(name, title, HEIGHT), _value_grid(values, y_scale, HEIGHT)]
    for i, bar in enumerate(bars):
        x, height = LEFT + i * band, bar.value * y_scale
        out.append(
            f'<rect class="bar" x="{x + (band - width) / 2:.1f}" y="{bottom - height:.1f}" '
            f'width="{width:.1f}" height="{height:.1f}" fill="{colors[bar.group]}">'
            f"<title>{escape(bar.tip or f'{bar.label}: {bar.value:g}')}</title></rect>"
        )
        if i % every == 0:
            out.append(
                f'<text class="tick" x="{x + band / 2:.1f}" y="{bottom + 16}" '
                f'text-anchor="middle">{escape(bar.label)}</text>'
            )
    at: dict[int, list[str]] = {}
    for text, index in markers:
        at.setdefault(index, []).append(text)
    shown = [(LEFT + (index + 0.5) * band, " ".join(texts)) for index, texts in sorted(at.items())]
    out.extend(
        f'<line class="marker" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}"/>'
        for x, _ in shown
    )
    out.extend(
        [_marker_labels(shown, top), _frame(x_label, y_label, HEIGHT, top), legend, "</svg>"]
    )
    return "".join(out)


def hbar_chart(name: str, title: str, bars: Sequence[Bar], x_label: str) -> str:
    """Horizontal bars for named categories (long labels fit on the left)."""
    if not bars:
        return _empty(name, title, "none recorded")
    left = LEFT + 150
    colors = _colors(bars)
    legend, top = _legend_of(colors)
    height = round(top) + ROW * len(bars) + BOTTOM
    bottom = height - BOTTOM
    values = y_ticks(max(bar.value for bar in bars))
    scale = (WIDTH - RIGHT - left) / values[-1]
    out = [_open(name, title, height)]
    for tick in values:
        x = left + tick * scale
        out.append(
            f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}"/>'
            f'<text class="tick" x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">'
            f"{short(tick)}</text>"
        )
    for i, bar in enumerate(bars):
        y = top + i * ROW
        # The category on the left, cut to its room; the value past the bar's end, or inside
        # it where it would run past the plot's edge.
        text = fit(bar.label, left - 6 - 4, SMALL)
        tip = f"<title>{escape(bar.label)}</title>" if text != bar.label else ""
        end, value = left + bar.value * scale, short(bar.value)
        inside = end + 4 + text_width(value, SMALL) > WIDTH
        where = f'x="{end - 4:.1f}" text-anchor="end"' if inside else f'x="{end + 4:.1f}"'
        out.append(
            f'<text class="tick" x="{left - 6}" y="{y + ROW / 2 + 4:.1f}" text-anchor="end">'
            f"{escape(text)}{tip}</text>"
            f'<rect class="bar" x="{left}" y="{y + 3:.1f}" width="{bar.value * scale:.1f}" '
            f'height="{ROW - 6}" fill="{colors[bar.group]}">'
            f"<title>{escape(bar.tip or f'{bar.label}: {bar.value:g}')}</title></rect>"
            f'<text class="{"value inside" if inside else "value"}" {where} '
            f'y="{y + ROW / 2 + 4:.1f}">{value}</text>'
        )
    out.append(
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{bottom}"/>'
        f'<line class="axis" x1="{left}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}"/>'
        f'<text class="label" x="{(left + WIDTH - RIGHT) / 2}" y="{height - 8}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    out.extend([legend, "</svg>"])
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Span:
    """One bar of a timeline: on ``row`` from ``start`` to ``end`` (x units), coloured by
    ``group`` (a legend entry)."""

    row: str
    start: float
    end: float
    group: str
    tip: str = ""


#: Rows a timeline draws; the rest are named in a note under it.
MAX_ROWS = 30


def timeline_chart(name: str, title: str, spans: Sequence[Span], x_label: str) -> str:
    """Horizontal bars on a shared time axis (a Gantt chart), one row per distinct ``row``
    in order of first appearance; spans of one row share it (a step's wait, then its
    streaming)."""
    if not spans:
        return _empty(name, title, "none recorded")
    rows: dict[str, int] = {}
    for span in spans:
        rows.setdefault(span.row, len(rows))
    shown = [span for span in spans if rows[span.row] < MAX_ROWS]
    hidden = len(rows) - min(len(rows), MAX_ROWS)
    left = LEFT + 110
    colors = _colors([Bar(label=s.row, value=0, group=s.group) for s in spans])
    legend, top = _legend_of(colors)
    count = min(len(rows), MAX_ROWS)
    height = round(top) + ROW * count + BOTTOM + (ROW if hidden else 0)
    bottom = round(top) + ROW * count
    end = max(s.end for s in spans) or 1.0
    ticks = x_ticks(0.0, end)
    scale = (WIDTH - RIGHT - left) / end
    out = [_open(name, title, height)]
    for tick in ticks:
        x = left + tick * scale
        out.append(
            f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}"/>'
            f'<text class="tick" x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">'
            f"{short(tick)}</text>"
        )
    for row, index in rows.items():
        if index >= MAX_ROWS:
            continue
        y = top + index * ROW
        text = fit(row, left - 6 - 4, SMALL)
        tip = f"<title>{escape(row)}</title>" if text != row else ""
        out.append(
            f'<text class="tick" x="{left - 6}" y="{y + ROW / 2 + 4:.1f}" text-anchor="end">'
            f"{escape(text)}{tip}</text>"
        )
    for span in shown:
        y = top + rows[span.row] * ROW
        x = left + span.start * scale
        width = max(1.0, (span.end - span.start) * scale)
        tip = span.tip or f"{span.row}: {short(span.start)} to {short(span.end)}"
        out.append(
            f'<rect class="bar" data-group="{escape(span.group)}" x="{x:.1f}" '
            f'y="{y + 3:.1f}" width="{width:.1f}" height="{ROW - 6}" '
            f'fill="{colors[span.group]}"><title>{escape(tip)}</title></rect>'
        )
    out.append(
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{bottom}"/>'
        f'<line class="axis" x1="{left}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}"/>'
        f'<text class="label" x="{(left + WIDTH - RIGHT) / 2}" y="{bottom + 36}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    if hidden:
        out.append(
            f'<text class="label" x="{left}" y="{bottom + 36 + ROW}">'
            f"{hidden} more row{'s' if hidden > 1 else ''} not drawn</text>"
        )
    out.extend([legend, "</svg>"])
    return "".join(out)
