"""Atomic writes: readers never see half a file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from loadtest.report.atomic import write_atomic


def test_atomic_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "sub" / "report.json"
    write_atomic(target, b"first")
    assert target.read_bytes() == b"first"

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_atomic(target, b"second")
    assert target.read_bytes() == b"first"
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]
