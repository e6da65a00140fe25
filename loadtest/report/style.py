"""The stylesheet every chatload page inlines: report.html, capacity.html, a trace's page."""

from __future__ import annotations

CSS = """
:root { --fg: #1d232b; --muted: #5d6773; --line: #d9dee4; --bg: #f5f7f9; --pass: #177245;
  --fail: #b42318; --warn: #9a5b00; --warn-bg: #fff4e0; --fail-bg: #fdecea; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 1360px; margin: 0 auto; padding: 24px 28px 40px; }
h1 { font-size: 24px; margin: 0 0 12px; display: flex; gap: 12px; align-items: center;
  flex-wrap: wrap; }
h2 { font-size: 17px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
section, header { background: #fff; border: 1px solid var(--line); border-radius: 8px;
  padding: 4px 20px 18px; margin-top: 18px; }
header { padding-top: 18px; }
.badge { font-size: 13px; font-weight: 700; letter-spacing: .04em; padding: 3px 10px;
  border-radius: 4px; color: #fff; }
.badge.pass { background: var(--pass); } .badge.fail { background: var(--fail); }
.badge.incomplete { background: var(--warn); }
.meta { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 8px 24px; margin: 0; }
.meta div { min-width: 0; } .meta dt { color: var(--muted); font-size: 12px; }
.meta dd { margin: 0; overflow-wrap: anywhere; font-weight: 500; }
.verdict { margin: 12px 0 0; color: var(--muted); }
.alert { margin-top: 14px; padding: 10px 14px; border-radius: 6px; border-left: 5px solid; }
.alert.incomplete { background: var(--fail-bg); border-color: var(--fail); }
.alert.warning { background: var(--warn-bg); border-color: var(--warn); }
.alert ul { margin: 4px 0 0; padding-left: 20px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
table.narrow { width: auto; min-width: 560px; }
th, td { padding: 5px 10px; line-height: 20px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; background: #fafbfc; }
td.num, th.num { text-align: right; white-space: nowrap; }
tr.none td { color: #a3abb5; }
td.pass { color: var(--pass); font-weight: 700; } td.fail { color: var(--fail); font-weight: 700; }
td.formula { color: var(--muted); font-size: 12px; }
td.message { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px;
  overflow-wrap: anywhere; }
.headline { display: grid; align-items: start; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 24px; }
.headline h3 { font-size: 13px; margin: 0 0 4px; color: var(--muted); }
.headline td.num { font-size: 16px; font-weight: 600; }
.plots { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 20px 28px; }
figure { margin: 0; min-width: 0; }
figcaption { font-weight: 600; margin-bottom: 2px; }
figcaption span { display: block; font-weight: 400; color: var(--muted); font-size: 12px; }
svg.plot { width: 100%; height: auto; display: block; overflow: visible; }
.plot text { font-size: 11px; fill: #3d4650; }
.plot text.label { font-size: 12px; fill: var(--muted); }
.plot text.empty { font-size: 14px; fill: #a3abb5; }
.plot .legend text { font-size: 12px; }
.plot .axis { stroke: #8a949e; stroke-width: 1; }
.plot .grid { stroke: #e8ebef; stroke-width: 1; }
.plot .line { fill: none; stroke-width: 2; stroke-linejoin: round; stroke-linecap: round; }
.plot line.marker { stroke: #d55e00; stroke-width: 1.5; stroke-dasharray: 4 3; }
.plot text.marker { font-weight: 600; fill: #d55e00; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
.plot text.value.inside { fill: #fff; }
.plot rect.bar:hover { opacity: .75; }
.counts { display: grid; align-items: start; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 0 24px; }
footer { color: var(--muted); font-size: 12px; margin-top: 18px; }
@media (max-width: 900px) { .plots, .headline, .meta, .counts { grid-template-columns: 1fr; } }
"""
