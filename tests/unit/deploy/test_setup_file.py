"""The setup file holds session tokens: born 0600, refused when others can read it, and a file
that is not one says so without echoing what it holds."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from loadtest.deploy.setup_file import Created, SetupFile, read_setup_file, write_setup_file

TOKEN = "s3cr3t-owner-token"


def setup() -> SetupFile:
    return SetupFile(
        url="https://coder.example",
        era="d",
        created_at=datetime(2026, 5, 1, tzinfo=UTC),
        owner_token=TOKEN,
        tokens=["k1", "k2"],
        created=Created(provider_id="p1", user_ids=["u1", "u2"]),
    )


def test_written_owner_only_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "setup.json"
    old = os.umask(0)  # a permissive umask must not widen it
    try:
        write_setup_file(path, setup())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_setup_file(path) == setup()
    assert [p.name for p in path.parent.iterdir()] == ["setup.json"], "no temporary left"


def test_rewriting_replaces_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "setup.json"
    write_setup_file(path, setup())
    write_setup_file(path, setup().model_copy(update={"tokens": ["k3"]}))
    assert read_setup_file(path).tokens == ["k3"]


def test_a_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "setup.json"
    write_setup_file(path, setup())
    path.chmod(0o644)
    with pytest.raises(ValueError, match=r"readable by others.*chmod 600"):
        read_setup_file(path)


def test_a_file_that_is_not_a_setup_file_says_so_without_its_content(tmp_path: Path) -> None:
    path = tmp_path / "setup.json"
    path.write_text(f'{{"url": "x", "owner_token": "{TOKEN}"}}')
    path.chmod(0o600)
    with pytest.raises(ValueError, match="not a chatload setup file") as caught:
        read_setup_file(path)
    assert TOKEN not in str(caught.value)
