"""``capacity.json``, ``capacity.html`` and ``summary.md`` of a capacity search.

The JSON follows ``docs/report-contract.md`` ("chatload capacity"); the page plots each SLO
figure (p50 and p95 where it is a latency) and throughput against load, every step a point,
repeats as points at the same load, the boundary marked. Inline CSS and SVG: it opens
offline. Every text from outside (expressions, URLs) is escaped.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Literal

import orjson
from pydantic import Field

from loadtest.report.atomic import write_atomic
from loadtest.report.strict import Strict
from loadtest.report.style import CSS
from loadtest.report.svg import Series, line_chart

SCHEMA_VERSION = 1


class CapacityStep(Strict):
    load: float
    repeat: int
    passed: bool
    #: The step's own report.json, relative to capacity.json.
    report: str
    figures: dict[str, float | None]
    stopped_early: str | None = None
    generator_bottleneck: bool = False
    #: The first SLO that failed in this step.
    broken: str | None = None


class CapacityReport(Strict):
    schema_version: int = SCHEMA_VERSION
    dimension: Literal["users", "arrival_rate", "speedup"]
    feasible_max: float | None
    infeasible_min: float | None
    binding_slo: str | None
    boundary: Literal["smooth", "cliff", "not_reached", "none_feasible", "generator_bound"]
    steps: list[CapacityStep]
    stopped_because: str
    # Beyond the contract's minimum:
    slos: list[str] = Field(default_factory=list)
    target: str = ""
    scenario: str = ""
    precision: float = 0.1
    repeats: int = 1
    duration_s: float = 0.0
    #: The binding figure's move across the boundary over what its trend predicts (a cliff
    #: at 3 and more).
    jump_over_trend: float | None = None

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_INDENT_2)


def load_capacity(path: Path) -> CapacityReport:
    return CapacityReport.model_validate_json(path.read_bytes())


def _unit(dimension: str) -> str:
    return {"users": "users", "speedup": "x the trace's speed"}.get(dimension, "turns/s")


def _load(value: float | None, dimension: str) -> str:
    if value is None:
        return "none"
    return f"{value:g} {_unit(dimension)}"


def verdict_line(report: CapacityReport) -> str:
    """One sentence: what the search found."""
    d = report.dimension
    if report.boundary == "generator_bound":
        return (
            "no verdict: the load generator, not the target, was the bottleneck at "
            f"{_load(report.infeasible_min or report.feasible_max, d)}; add --workers"
        )
    if report.boundary == "none_feasible":
        return f"no load was feasible: {report.binding_slo} broke already at the lowest step"
    if report.boundary == "not_reached":
        return f"every SLO held up to the maximum tried, {_load(report.feasible_max, d)}"
    return (
        f"capacity {_load(report.feasible_max, d)}: at {_load(report.infeasible_min, d)} "
        f"{report.binding_slo} broke ({report.boundary} boundary)"
    )


def _figure_names(report: CapacityReport) -> list[str]:
    names: list[str] = []
    for step in report.steps:
        for name in step.figures:
            if name not in names:
                names.append(name)
    return names


def _series(report: CapacityReport, name: str) -> Series:
    points = sorted(
        ((step.load, step.figures.get(name)) for step in report.steps), key=lambda p: p[0]
    )
    return Series(name, points)


def _groups(report: CapacityReport) -> list[tuple[str, list[str]]]:
    """Plots: one per SLO figure family (its p50 and p95 together), then throughput."""
    names = _figure_names(report)
    plots: list[tuple[str, list[str]]] = []
    seen: set[str] = set()
    for name in names:
        if name in ("goodput_per_s", "turns_per_s") or name in seen:
            continue
        base, _, _ = name.partition(".")
        family = [n for n in names if n.partition(".")[0] == base]
        seen.update(family)
        plots.append((base, family))
    plots.append(
        ("throughput (per s)", [n for n in ("turns_per_s", "goodput_per_s") if n in names])
    )
    return plots


def render_html(report: CapacityReport) -> str:
    d = report.dimension
    marks = []
    if report.feasible_max is not None:
        marks.append((report.feasible_max, "feasible max"))
    if report.infeasible_min is not None:
        marks.append((report.infeasible_min, f"breaks: {report.binding_slo or ''}"))
    plots = []
    for index, (title, names) in enumerate(_groups(report)):
        if not names:
            continue
        unit = "ms" if any(n.startswith(("time_", "chat_", "stream_")) for n in names) else ""
        svg = line_chart(
            f"capacity-{index}",
            title,
            [_series(report, n) for n in names],
            f"load ({_unit(d)})",
            unit or title,
            marks,
        )
        plots.append(f"<figure><figcaption>{escape(title)}</figcaption>{svg}</figure>")
    rows = []
    for step in sorted(report.steps, key=lambda s: (s.load, s.repeat)):
        figures = ", ".join(
            f"{escape(k)} {v:.4g}" for k, v in step.figures.items() if v is not None
        )
        note = escape(step.stopped_early or "")
        if step.generator_bottleneck:
            note = (note + " generator bottleneck").strip()
        css = "pass" if step.passed else "fail"
        rows.append(
            f"<tr><td class='num'>{step.load:g}</td><td class='num'>{step.repeat}</td>"
            f"<td class='{css}'>{'PASS' if step.passed else 'FAIL'}</td>"
            f"<td>{escape(step.broken or '')}</td><td class='message'>{figures}</td>"
            f"<td>{note}</td><td><a href='{escape(step.report)}'>report</a></td></tr>"
        )
    badge = "pass" if report.boundary in ("smooth", "cliff", "not_reached") else "fail"
    slos = "".join(f"<li>{escape(s)}</li>" for s in report.slos)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>chatload capacity: {escape(report.scenario)}</title><style>{CSS}</style></head>"
        "<body><main><header>"
        f"<h1>Capacity search <span class='badge {badge}'>{escape(report.boundary)}</span></h1>"
        f"<p class='verdict'>{escape(verdict_line(report))}</p>"
        f"<dl class='meta'><div><dt>target</dt><dd>{escape(report.target)}</dd></div>"
        f"<div><dt>scenario</dt><dd>{escape(report.scenario)}</dd></div>"
        f"<div><dt>steps</dt><dd>{len(report.steps)} in {report.duration_s:.0f} s</dd></div>"
        f"<div><dt>stopped</dt><dd>{escape(report.stopped_because)}</dd></div></dl>"
        f"<ul>{slos}</ul></header>"
        f"<section><h2>Figures against load</h2><div class='plots'>{''.join(plots)}</div>"
        "</section><section><h2>Steps</h2><table><tr><th class='num'>load</th>"
        "<th class='num'>repeat</th><th>verdict</th><th>broke</th><th>figures</th>"
        f"<th>note</th><th></th></tr>{''.join(rows)}</table></section>"
        "<footer>chatload capacity</footer></main></body></html>"
    )


def render_markdown(report: CapacityReport) -> str:
    lines = [
        f"## chatload capacity: {report.boundary}",
        "",
        verdict_line(report),
        "",
        f"| {report.dimension} | repeat | verdict | broke | stopped early |",
        "|---:|---:|---|---|---|",
    ]
    for step in sorted(report.steps, key=lambda s: (s.load, s.repeat)):
        verdict = "PASS" if step.passed else "FAIL"
        if step.generator_bottleneck:
            verdict += " (generator bottleneck)"
        broke = (step.broken or "").replace("|", "\\|")
        lines.append(
            f"| {step.load:g} | {step.repeat} | {verdict} | {broke} | {step.stopped_early or ''} |"
        )
    lines += ["", f"Stopped: {report.stopped_because}", ""]
    return "\n".join(lines)


def write_capacity_files(report: CapacityReport, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    files = [
        (directory / "capacity.json", report.to_json()),
        (directory / "capacity.html", render_html(report).encode()),
        (directory / "summary.md", render_markdown(report).encode()),
    ]
    for path, data in files:
        write_atomic(path, data)
    return [path for path, _ in files]
