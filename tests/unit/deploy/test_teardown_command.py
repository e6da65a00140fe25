"""``chatload teardown``: a setup file it cannot use is exit 2 naming the file, never its
tokens; a deployment that cannot be reached is exit 3."""

from __future__ import annotations

import argparse
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from loadtest.deploy.setup_file import SetupFile, write_setup_file
from loadtest.deploy.teardown_command import configure, main

TOKEN = "s3cr3t-owner-token"


def args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure(parser)
    return parser.parse_args(list(argv))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_missing_or_open_setup_file_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.json"
    assert main(args("--setup", str(missing))) == 2
    assert str(missing) in capsys.readouterr().err
    path = tmp_path / "setup.json"
    setup = SetupFile(
        url="http://127.0.0.1:1", era="d", created_at=datetime.now(UTC), owner_token=TOKEN,
        tokens=[TOKEN],
    )  # fmt: skip
    write_setup_file(path, setup)
    path.chmod(0o640)
    assert main(args("--setup", str(path))) == 2
    err = capsys.readouterr().err
    assert "readable by others" in err and TOKEN not in err


def test_an_unreachable_deployment_is_exit_3_without_the_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "setup.json"
    setup = SetupFile(
        url=f"http://127.0.0.1:{closed_port()}", era="d", created_at=datetime.now(UTC),
        owner_token=TOKEN, tokens=[TOKEN],
    )  # fmt: skip
    write_setup_file(path, setup)
    assert main(args("--setup", str(path))) == 3
    captured = capsys.readouterr()
    assert "chatload teardown:" in captured.err and TOKEN not in captured.err + captured.out


def test_the_default_setup_file_is_setups() -> None:
    assert args().setup == Path(".chatload-setup.json")
