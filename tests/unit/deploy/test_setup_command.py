"""``chatload setup``: what it needs is checked first (exit 2), a deployment it cannot reach
is exit 3, and no secret reaches its output."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

import pytest

from loadtest.deploy.setup_command import DEFAULT_FILE, configure, main

TOKEN = "s3cr3t-owner-token"


def args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure(parser)
    return parser.parse_args(["--llm-url", "http://127.0.0.1:9/v1", *argv])


def test_a_host_is_required(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CODER_URL", raising=False)
    assert main(args()) == 2
    assert "--host (or CODER_URL) is required" in capsys.readouterr().err


def test_negative_users_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args("--host", "http://127.0.0.1:1", "--users", "-1")) == 2
    assert "--users must be >= 0" in capsys.readouterr().err


def test_an_unreachable_deployment_is_exit_3_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "setup.json"
    code = main(args("--host", f"http://127.0.0.1:{port}", "--token", TOKEN, "--out", str(out)))
    captured = capsys.readouterr()
    assert code == 3 and not out.exists()
    assert "chatload setup:" in captured.err and TOKEN not in captured.err + captured.out


def test_the_file_goes_where_teardown_looks_by_default() -> None:
    assert args("--host", "http://x").out == DEFAULT_FILE
