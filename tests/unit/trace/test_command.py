"""``chatload trace``'s flags: times, sources, exit codes, and no secret in any message."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from loadtest.cli import main
from loadtest.trace.command import UsageError, parse_moment
from loadtest.trace.export_db import scrub
from loadtest.trace.files import read_trace


def test_times_dates_zones_and_durations_ago() -> None:
    assert parse_moment("--since", "2026-12-08") == datetime(2026, 12, 8, tzinfo=UTC)
    assert parse_moment("--since", "2026-12-08T09:30:00+02:00") == datetime(
        2026, 12, 8, 7, 30, tzinfo=UTC
    )
    now = datetime(2026, 12, 9, 12, 0, tzinfo=UTC)
    assert parse_moment("--since", "24h", now) == datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
    assert parse_moment("--until", None) is None
    with pytest.raises(UsageError, match="--since: 'last tuesday' is neither a time"):
        parse_moment("--since", "last tuesday")


def test_the_password_of_a_database_url_is_never_shown() -> None:
    url = "postgresql://coder:p%40ss%2Fword@db.internal:5432/coder?sslmode=disable"
    assert scrub(url, url) == "postgresql://coder:***@db.internal:5432/coder?sslmode=disable"
    assert scrub("FATAL: password p@ss/word rejected, p%40ss%2Fword", url) == (
        "FATAL: password *** rejected, ***"
    )


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_database_exits_3_without_its_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"postgresql://coder:hunter2secret@127.0.0.1:{closed_port()}/coder"
    monkeypatch.setenv("CODER_PG_CONNECTION_URL", url)
    out = tmp_path / "t.jsonl.gz"
    assert main(["trace", "export", "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert err.startswith("chatload trace export: cannot connect to the database")
    assert "hunter2secret" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["trace", "export"], "say where from: --database-url"),
        (
            ["trace", "export", "--database-url", "postgresql://x/y", "--token", "t"],
            "--token, --rps and --era are for --host",
        ),
        (["trace", "export", "--host", "coder.example.com"], "needs a scheme"),
        (["trace", "export", "--host", "http://127.0.0.1:9"], "no session token"),
        (
            [
                "trace",
                "export",
                "--host",
                "http://x",
                "--since",
                "2026-12-09",
                "--until",
                "2026-12-08",
            ],
            "--until must be after --since",
        ),
        (["trace", "synth", "--duration", "soon"], "--duration: "),
        (["trace", "synth", "--scenario", "/no/such.toml"], "no such scenario file"),
    ],
)
def test_bad_usage_exits_2_and_says_which_flag(
    argv: list[str],
    expected: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("CODER_PG_CONNECTION_URL", "CODER_URL", "CODER_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert main(argv) == 2
    assert expected in capsys.readouterr().err


def test_synth_writes_a_trace_show_can_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s.jsonl.gz"
    assert main(["trace", "synth", "--chats", "20", "--duration", "5m", "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}: 20 chats (0 sub-agents), 60 turns")
    assert len(read_trace(out).chats) == 20
