"""``chatload bench``: sections by name, each printed with its rows; a section not named does
not run."""

from __future__ import annotations

import argparse

import pytest

from loadtest.bench.command import SECTIONS, configure, main


def args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure(parser)
    return parser.parse_args(list(argv))


def test_only_the_named_section_runs_and_prints_its_rows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(args("--only", "core", "--seconds", "0.002")) == 0
    out = capsys.readouterr().out
    assert "Pure core: decode + record, per event" in out
    assert "ns/event" in out and "histogram record: chatload" in out
    assert "Simulator:" not in out and "Pubsub" not in out


def test_an_unknown_section_is_a_usage_error() -> None:
    assert set(args().only or SECTIONS) == set(SECTIONS)
    with pytest.raises(SystemExit):
        args("--only", "everything")
