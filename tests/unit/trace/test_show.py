"""``trace show``: the figures of a small trace exactly, the terminal text and the page."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from loadtest.cli import main
from loadtest.trace.files import read_trace_bytes
from loadtest.trace.show import Stats, describe, histogram, render_html, render_text


def turn(think: float, duration: float | None, tools: dict[str, int], tokens: int | None) -> dict:
    return {
        "think_s": think,
        "prompt_chars": 10,
        "steps": 1 + sum(tools.values()),
        "tools": tools,
        "subagents": tools.get("spawn_agent", 0),
        "output_tokens": tokens,
        "duration_s": duration,
    }


ROWS = [
    {
        "schema_version": 1,
        "source": "unit",
        "started_at": "2026-12-08T09:00:00Z",
        "duration_s": 150.0,
        "chats": 3,
    },
    {
        "chat": "a",
        "start_s": 10.0,
        "parent": None,
        "workspace": 0,
        "turns": [
            turn(0.0, 20.0, {"execute": 2, "spawn_agent": 1}, 100),
            turn(40.0, 5.0, {}, 20),
        ],
    },
    {
        "chat": "b",
        "start_s": 25.0,
        "parent": "a",
        "workspace": 0,
        "turns": [turn(0.0, None, {"read_file": 1}, None)],
    },
    {
        "chat": "c",
        "start_s": 130.0,
        "parent": None,
        "workspace": 3,
        "turns": [turn(1.0, 2.0, {}, 5)],
    },
]
DATA = b"".join(orjson.dumps(row) + b"\n" for row in ROWS)


def test_the_figures_of_a_small_trace() -> None:
    d = describe(read_trace_bytes(DATA))
    assert (d.chats, d.subagent_chats, d.turns, d.workspaces) == (3, 1, 4, 2)
    assert d.chats_per_minute == [2, 0, 1]
    # Turns start at 10, 70 (10 + 0 + 20 + 40), 25 and 131 s.
    assert d.turns_per_minute == [2, 1, 1]
    assert d.distributions["turns_per_chat"].values == (1, 1, 2)
    assert d.distributions["tool_calls"].values == (0, 0, 1, 3)
    assert d.distributions["subagents"].values == (0, 0, 0, 1)
    assert d.distributions["output_tokens"].values == (5, 20, 100)  # null is no value
    assert d.distributions["duration_s"].values == (2.0, 5.0, 20.0)
    assert d.tools == {"execute": 2, "spawn_agent": 1, "read_file": 1}


def test_stats_use_values_that_occurred() -> None:
    s = Stats.of([5, 1, 3, 2, 4])
    assert (s.count, s.min, s.p50, s.p90, s.p99, s.max, s.mean) == (5, 1, 3, 5, 5, 5, 3)
    assert Stats.of([]).count == 0


def test_histograms_bar_each_small_whole_value_and_bin_a_spread() -> None:
    assert [(b.label, b.value) for b in histogram((1, 1, 2, 5), whole=True)] == [
        ("1", 2),
        ("2", 1),
        ("5", 1),
    ]
    spread = histogram(tuple(float(i) for i in range(1000)), whole=False)
    assert sum(b.value for b in spread) == 1000
    assert spread[-1].label.startswith(">")  # the tail above p99 is one bar


def test_the_text_and_the_page() -> None:
    d = describe(read_trace_bytes(DATA))
    text = render_text(d)
    assert "3 (2 user chats, 1 sub-agents) in 2 workspaces" in text
    assert "execute" in text
    page = render_html(d, "unit.jsonl")
    assert page.count('<svg class="plot"') == 10  # arrivals, 8 distributions, tools
    assert 'data-plot="arrivals"' in page and 'data-plot="tools"' in page


def test_show_prints_and_writes_the_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_bytes(DATA)
    page = tmp_path / "t.html"
    assert main(["trace", "show", str(trace), "--html", str(page)]) == 0
    assert "turns        4" in capsys.readouterr().out
    assert page.read_text().startswith("<!doctype html>")


def test_show_of_a_bad_trace_exits_2_naming_the_line_and_shows_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "bad.jsonl"
    trace.write_bytes(DATA.replace(b'"parent":"a"', b'"parent":"nobody"'))
    page = tmp_path / "bad.html"
    assert main(["trace", "show", str(trace), "--html", str(page)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert (
        err
        == f"chatload trace show: {trace}: line 3: parent: 'nobody' is not a chat in this file\n"
    )
    assert not page.exists()


def _cut_gzip(data: bytes) -> bytes:
    import gzip

    many = data + b"".join(orjson.dumps({**ROWS[3], "chat": f"x{i}"}) + b"\n" for i in range(300))
    packed = gzip.compress(many.replace(b'"chats":3', b'"chats":303'))
    return packed[: len(packed) // 2]


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda d: d.replace(b'"steps":1,', b"", 1), "line 2: turns.1.steps: Field required"),
        (lambda d: d.replace(b'"think_s":40.0', b'"think_s":-40.0'), "line 2: turns.1.think_s: "),
        (lambda d: d.replace(b'"parent":"a"', b'"parent":"z"'), "line 3: parent: 'z' is not"),
        (_cut_gzip, "the gzip stream ends early (the file was cut short)"),
    ],
    ids=["missing key", "negative time", "unknown parent", "truncated gzip"],
)
def test_the_bad_traces_of_the_issue_exit_2_naming_the_line(
    damage: Callable[[bytes], bytes],
    expected: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    trace = tmp_path / "bad.jsonl.gz"
    trace.write_bytes(damage(DATA))
    assert main(["trace", "show", str(trace)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"chatload trace show: {trace}: line ")
    assert expected in err
