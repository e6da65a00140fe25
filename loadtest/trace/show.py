"""``chatload trace show``: what is in a trace, in the terminal and as an HTML page with plots.

The figures are computed once (``describe``), pure, and both renderings read them: chats
(user chats and sub-agents), turns, workspaces, arrivals per minute (chats started, and
turns started as the recorded times place them), the distributions per turn and per chat,
and tool calls by name. The page reuses the report's stylesheet and SVG charts, so it opens
anywhere without a network.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from loadtest.report.fmt import number, seconds
from loadtest.report.style import CSS
from loadtest.report.svg import Bar, Series, bar_chart, hbar_chart, line_chart
from loadtest.trace.model import Trace

#: Bars in a histogram of a spread-out quantity.
BINS = 20


@dataclass(frozen=True, slots=True)
class Stats:
    """A distribution's summary; ``values`` kept for the histogram."""

    values: tuple[float, ...]
    count: int = 0
    min: float = 0.0
    mean: float = 0.0
    p50: float = 0.0
    p90: float = 0.0
    p99: float = 0.0
    max: float = 0.0

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        ordered = tuple(sorted(values))
        if not ordered:
            return cls(())
        return cls(
            values=ordered,
            count=len(ordered),
            min=ordered[0],
            mean=sum(ordered) / len(ordered),
            p50=_rank(ordered, 0.50),
            p90=_rank(ordered, 0.90),
            p99=_rank(ordered, 0.99),
            max=ordered[-1],
        )


def _rank(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank percentile: a value that occurred."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


#: (key, what it is, unit, whole numbers?)
DISTRIBUTIONS: tuple[tuple[str, str, str, bool], ...] = (
    ("turns_per_chat", "turns per chat", "", True),
    ("think_s", "think time before a turn", "s", False),
    ("prompt_chars", "prompt size", "characters", True),
    ("steps", "steps per turn", "", True),
    ("tool_calls", "tool calls per turn", "", True),
    ("subagents", "sub-agents per turn", "", True),
    ("output_tokens", "output tokens per turn", "tokens", True),
    ("duration_s", "turn duration", "s", False),
)


@dataclass(slots=True)
class Description:
    source: str
    started_at: str
    duration_s: float
    chats: int
    subagent_chats: int
    turns: int
    workspaces: int
    #: Per minute since the start: chats started, turns started.
    chats_per_minute: list[int] = field(default_factory=list)
    turns_per_minute: list[int] = field(default_factory=list)
    distributions: dict[str, Stats] = field(default_factory=dict)
    tools: Counter[str] = field(default_factory=Counter)


def describe(trace: Trace) -> Description:
    header = trace.header
    minutes = max(1, math.ceil(header.duration_s / 60))
    chats_pm = [0] * minutes
    turn_starts: list[float] = []
    values: dict[str, list[float]] = {key: [] for key, *_ in DISTRIBUTIONS}
    tools: Counter[str] = Counter()
    for chat in trace.chats:
        chats_pm[min(minutes - 1, int(chat.start_s // 60))] += 1
        values["turns_per_chat"].append(len(chat.turns))
        at = chat.start_s
        for turn in chat.turns:
            at += turn.think_s
            turn_starts.append(at)
            at += turn.duration_s or 0.0
            values["think_s"].append(turn.think_s)
            values["prompt_chars"].append(turn.prompt_chars)
            values["steps"].append(turn.steps)
            values["tool_calls"].append(turn.tool_calls())
            values["subagents"].append(turn.subagents)
            if turn.output_tokens is not None:
                values["output_tokens"].append(turn.output_tokens)
            if turn.duration_s is not None:
                values["duration_s"].append(turn.duration_s)
            tools.update(turn.tools)
    # Turns may run past the trace's span: the plot runs on to the last one.
    turns_pm = [0] * max(minutes, 1 + int(max(turn_starts, default=0.0) // 60))
    for at in turn_starts:
        turns_pm[int(at // 60)] += 1
    chats_pm += [0] * (len(turns_pm) - len(chats_pm))
    return Description(
        source=header.source,
        started_at=header.started_at.isoformat().replace("+00:00", "Z"),
        duration_s=header.duration_s,
        chats=len(trace.chats),
        subagent_chats=sum(1 for chat in trace.chats if chat.parent is not None),
        turns=len(turn_starts),
        workspaces=len({c.workspace for c in trace.chats if c.workspace is not None}),
        chats_per_minute=chats_pm,
        turns_per_minute=turns_pm,
        distributions={key: Stats.of(v) for key, v in values.items()},
        tools=tools,
    )


def _value(value: float, whole: bool) -> str:
    return number(round(value)) if whole else number(float(value))


def render_text(d: Description) -> str:
    """The terminal's view: the counts, the busiest minute, one row per distribution."""
    busiest = max(d.chats_per_minute, default=0)
    lines = [
        f"source       {d.source}",
        f"started at   {d.started_at}",
        f"duration     {seconds(d.duration_s)}",
        f"chats        {d.chats:,} ({d.chats - d.subagent_chats:,} user chats, "
        f"{d.subagent_chats:,} sub-agents) in {d.workspaces:,} workspaces",
        f"turns        {d.turns:,}",
        f"arrivals     {d.chats / max(d.duration_s / 60, 1 / 60):.2f} chats/min on average, "
        f"{busiest:,} in the busiest minute; turns/min peak {max(d.turns_per_minute, default=0):,}",
        "",
        f"{'per turn':<34}{'count':>9}{'min':>10}{'p50':>10}{'p90':>10}{'p99':>10}{'max':>10}",
    ]
    for key, label, unit, whole in DISTRIBUTIONS:
        s = d.distributions[key]
        name = f"{label} ({unit})" if unit else label
        if not s.count:
            lines.append(f"{name:<34}{0:>9}{'n/a':>10}")
            continue
        cells = (s.min, s.p50, s.p90, s.p99, s.max)
        lines.append(f"{name:<34}{s.count:>9,}" + "".join(f"{_value(v, whole):>10}" for v in cells))
    if d.tools:
        lines += ["", "tool calls by name"]
        lines += [f"  {name:<24}{count:>9,}" for name, count in d.tools.most_common()]
    return "\n".join(lines) + "\n"


def histogram(values: Sequence[float], whole: bool) -> list[Bar]:
    """Bars over the values: one a value when few whole numbers, else ``BINS`` equal bins
    up to the p99 and one bar for the rest (a long tail does not squash the body)."""
    if not values:
        return []
    low, high = values[0], values[-1]
    distinct = sorted(set(values))
    if whole and len(distinct) <= 2 * BINS:
        counts = Counter(values)
        return [Bar(label=_value(v, True), value=counts[v]) for v in distinct]
    top = _rank(values, 0.99)
    if top <= low:
        top = high
    width = (top - low) / BINS or 1.0
    bars = [0] * BINS
    rest = 0
    for value in values:
        if value > top:
            rest += 1
        else:
            bars[min(BINS - 1, int((value - low) / width))] += 1
    out = [
        Bar(
            label=_value(low + i * width, whole),
            value=n,
            tip=f"{_value(low + i * width, whole)} to {_value(low + (i + 1) * width, whole)}: {n}",
        )
        for i, n in enumerate(bars)
    ]
    if rest:
        out.append(Bar(label=f">{_value(top, whole)}", value=rest, tip=f"above p99: {rest}"))
    return out


def _e(value: object) -> str:
    return escape(str(value))


def _figure(title: str, note: str, svg: str) -> str:
    return f"<figure><figcaption>{_e(title)}<span>{_e(note)}</span></figcaption>{svg}</figure>"


def render_html(d: Description, name: str) -> str:
    """One page: the counts, arrivals per minute, a histogram per distribution, tools."""
    facts = (
        ("source", d.source),
        ("started at", d.started_at),
        ("duration", seconds(d.duration_s)),
        ("chats", f"{d.chats:,} ({d.subagent_chats:,} sub-agents)"),
        ("turns", f"{d.turns:,}"),
        ("workspaces", f"{d.workspaces:,}"),
    )
    meta = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in facts)
    minutes = [float(i) for i in range(len(d.turns_per_minute))]
    arrivals = line_chart(
        "arrivals",
        "arrivals per minute",
        [
            Series(
                "chats started", list(zip(minutes, map(float, d.chats_per_minute), strict=True))
            ),
            Series(
                "turns started",
                list(zip(minutes, map(float, d.turns_per_minute), strict=True)),
                dashed=True,
            ),
        ],
        "minutes since start",
        "per minute",
    )
    figures = [_figure("Arrivals per minute", "turns placed by their recorded times", arrivals)]
    rows = []
    for key, label, unit, whole in DISTRIBUTIONS:
        s = d.distributions[key]
        figures.append(
            _figure(
                label.capitalize(),
                f"{s.count:,} values" + (f", p50 {_value(s.p50, whole)} {unit}" if s.count else ""),
                bar_chart(key, label, histogram(s.values, whole), unit or label, "count"),
            )
        )
        cells = (s.min, s.mean, s.p50, s.p90, s.p99, s.max) if s.count else ()
        rows.append(
            f"<tr><td>{_e(label)}</td><td>{_e(unit)}</td><td class='num'>{s.count:,}</td>"
            + "".join(f"<td class='num'>{_e(_value(v, whole))}</td>" for v in cells)
            + "</tr>"
        )
    tools = [Bar(label=k, value=n) for k, n in d.tools.most_common()]
    figures.append(
        _figure(
            "Tool calls by name", "over all turns", hbar_chart("tools", "tools", tools, "calls")
        )
    )
    head = "".join(
        f"<th{' class=num' if i > 1 else ''}>{h}</th>"
        for i, h in enumerate(("", "unit", "count", "min", "mean", "p50", "p90", "p99", "max"))
    )
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>chatload trace: {_e(name)}</title><style>{CSS}</style></head><body><main>"
        f"<header><h1>Trace {_e(name)}</h1><dl class='meta'>{meta}</dl></header>"
        f"<section><h2>Plots</h2><div class='plots'>{''.join(figures)}</div></section>"
        f"<section><h2>Distributions</h2>{table}</section>"
        "<footer>What happened, without what was said: no text, titles, names or Coder ids "
        "are in a trace.</footer></main></body></html>"
    )
