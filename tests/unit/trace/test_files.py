"""Trace files: written and read back unchanged; every bad trace refused naming its line."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from loadtest.trace.files import TraceError, encode, read_trace, read_trace_bytes, write_trace
from loadtest.trace.model import Trace


def turn(**changes: Any) -> dict[str, Any]:
    return {
        "think_s": 1.5,
        "prompt_chars": 42,
        "steps": 3,
        "tools": {"execute": 2, "spawn_agent": 1},
        "subagents": 1,
        "output_tokens": 310,
        "duration_s": 12.25,
        **changes,
    }


def chat(name: str, start: float, parent: str | None = None, **changes: Any) -> dict[str, Any]:
    return {
        "chat": name,
        "start_s": start,
        "parent": parent,
        "workspace": 0,
        "turns": [turn()],
        **changes,
    }


def header(chats: int, **changes: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "source": "test",
        "started_at": "2026-12-08T00:00:00Z",
        "duration_s": 600.0,
        "chats": chats,
        **changes,
    }


def lines(*rows: dict[str, Any]) -> bytes:
    return b"".join(orjson.dumps(row) + b"\n" for row in rows)


GOOD = lines(header(3), chat("a1", 0.0), chat("b2", 2.5, parent="a1"), chat("c3", 30.0))


def refusal(data: bytes) -> str:
    with pytest.raises(TraceError) as caught:
        read_trace_bytes(data, "t.jsonl")
    return str(caught.value)


def test_a_trace_reads_as_written_plain_and_gzip(tmp_path: Path) -> None:
    trace = read_trace_bytes(GOOD)
    assert [c.chat for c in trace.chats] == ["a1", "b2", "c3"]
    assert trace.chats[1].parent == "a1"
    assert trace.chats[0].turns[0].tools == {"execute": 2, "spawn_agent": 1}
    for name in ("t.jsonl", "t.jsonl.gz"):
        path = tmp_path / name
        write_trace(path, trace)
        again = read_trace(path)
        assert again == trace
        assert encode(again) == encode(trace)
    assert (tmp_path / "t.jsonl.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert (tmp_path / "t.jsonl").read_bytes() == encode(trace)


def test_writing_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    trace = read_trace_bytes(GOOD)
    write_trace(tmp_path / "a.gz", trace)
    write_trace(tmp_path / "b.gz", trace)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


def test_gzip_is_known_by_its_bytes_not_its_name(tmp_path: Path) -> None:
    path = tmp_path / "renamed.jsonl"
    path.write_bytes(gzip.compress(GOOD))
    assert len(read_trace(path).chats) == 3


def test_a_missing_key_names_the_line_and_the_key() -> None:
    bad = chat(
        "b2", 2.5, parent="a1", turns=[turn(), {k: v for k, v in turn().items() if k != "steps"}]
    )
    message = refusal(lines(header(2), chat("a1", 0.0), bad))
    assert message == "t.jsonl: line 3: turns.1.steps: Field required"


def test_a_negative_time_names_the_line_and_the_key() -> None:
    message = refusal(lines(header(1), chat("a1", 0.0, turns=[turn(think_s=-0.5)])))
    assert message.startswith("t.jsonl: line 2: turns.0.think_s: ")
    assert "greater than or equal to 0" in message
    assert "line 2: start_s" in refusal(lines(header(1), chat("a1", -1.0)))


def test_a_parent_not_in_the_file_is_refused_at_the_child() -> None:
    message = refusal(lines(header(2), chat("a1", 0.0), chat("b2", 1.0, parent="zz")))
    assert message == "t.jsonl: line 3: parent: 'zz' is not a chat in this file"


def test_a_truncated_gzip_is_refused_naming_where_it_ends() -> None:
    many = lines(header(400), *(chat(f"c{i}", float(i)) for i in range(400)))
    packed = gzip.compress(many)
    message = refusal(packed[: len(packed) // 2])
    assert "the gzip stream ends early (the file was cut short)" in message
    number = int(message.split("line ")[1].split(":")[0])
    assert 2 < number < 402


def test_a_plain_file_cut_short_is_caught_by_the_header_count() -> None:
    message = refusal(GOOD.rsplit(b"\n", 2)[0] + b"\n")
    assert message == (
        "t.jsonl: line 4: chats: the header says 3 chats but the file has 2 (was it cut short?)"
    )
    half_line = GOOD[: len(GOOD) - 20]
    assert refusal(half_line).startswith("t.jsonl: line 4: not JSON")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "t.jsonl: line 1: empty, no header"),
        (lines(header(0, schema_version=2)), "line 1: schema_version: 2 is not a version"),
        (lines(header(0, started_at="yesterday")), "line 1: started_at: "),
        (lines(header(0, started_at="2026-12-08T00:00:00")), "line 1: started_at: "),
        (lines(header(1), chat("a1", 0.0, colour="red")), "line 2: colour: Extra inputs"),
        (lines(header(1), chat("a1", 0.0, turns=[])), "line 2: turns: List should have at least 1"),
        (lines(header(1), chat("a1", 0.0, turns=[turn(steps="3")])), "line 2: turns.0.steps: "),
        (lines(header(1), chat("a1", 0.0, turns=[turn(steps=2.0)])), "line 2: turns.0.steps: "),
        (
            lines(header(1), chat("a1", 0.0, turns=[turn(tools={"execute": -1})])),
            "line 2: turns.0.tools.execute: ",
        ),
        (
            lines(header(2), chat("a1", 0.0), chat("a1", 1.0)),
            "line 3: chat: 'a1' is already line 2",
        ),
        (lines(header(1), chat("a1", 601.0)), "line 2: start_s: 601 is after the trace's end"),
        (
            lines(header(2), chat("a1", 5.0), chat("b2", 1.0, parent="a1")),
            "line 3: start_s: 1 is before its parent's start (5, line 2)",
        ),
        (
            lines(
                header(3),
                chat("a1", 0.0),
                chat("b2", 1.0, parent="a1"),
                chat("c3", 2.0, parent="b2"),
            ),
            "line 4: parent: 'b2' is itself a sub-agent (line 3)",
        ),
        (lines(header(1), [1, 2]), "line 2: a line is a JSON object, not list"),  # type: ignore[arg-type]
        (GOOD.replace(b"\n", b"\n\n", 1), "line 2: an empty line"),
    ],
)
def test_each_bad_trace_is_refused_naming_the_line(data: bytes, expected: str) -> None:
    assert expected in refusal(data)


def test_an_unreadable_file_is_a_trace_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="cannot read it"):
        read_trace(tmp_path / "missing.jsonl")


def test_null_output_tokens_and_duration_are_kept() -> None:
    data = lines(header(1), chat("a1", 0.0, turns=[turn(output_tokens=None, duration_s=None)]))
    only = read_trace_bytes(data).chats[0].turns[0]
    assert only.output_tokens is None
    assert only.duration_s is None
    assert isinstance(read_trace_bytes(data), Trace)
