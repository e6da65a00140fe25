"""``chatload trace export --host --token`` against the simulator: the owner's chats, exactly."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from loadtest.cli import main
from loadtest.trace.build import opaque
from loadtest.trace.files import read_trace
from tests.integration.conftest import TOKEN, EraSim

PROMPTS = ("SECRET first question, twenty-nine", "SECRET second", "SECRET a follow-up")


def test_the_token_owners_chats_become_a_trace(era_d: EraSim, tmp_path: Path) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    first = era_d.create_chat(PROMPTS[0])["id"]
    era_d.wait_idle(first)
    second = era_d.create_chat(PROMPTS[1])["id"]
    era_d.wait_idle(second)
    assert era_d.post(first, PROMPTS[2]).status_code == 200
    era_d.wait_idle(first)

    out = tmp_path / "api.jsonl.gz"
    argv = ["trace", "export", "--host", era_d.url, "--token", TOKEN, "--since", since]
    assert main([*argv, "--out", str(out), "--salt", "k", "--rps", "50"]) == 0
    trace = read_trace(out)

    assert [c.chat for c in trace.chats] == [opaque(b"k", first), opaque(b"k", second)]
    assert [c.parent for c in trace.chats] == [None, None]
    turns = {c.chat: c.turns for c in trace.chats}
    one, two = turns[opaque(b"k", first)], turns[opaque(b"k", second)]
    assert [t.prompt_chars for t in one] == [len(PROMPTS[0]), len(PROMPTS[2])]
    assert [t.prompt_chars for t in two] == [len(PROMPTS[1])]
    # The simulator's usage, as GET /messages reports it, is what the trace holds.
    for chat_id, chat_turns in ((first, one), (second, two)):
        page = era_d.api.get(f"/api/v2/chats/{chat_id}/messages", params={"limit": 200}).json()
        usage = [
            m["usage"]["output_tokens"]
            for m in sorted(page["messages"], key=lambda m: m["id"])
            if m["role"] == "assistant"
        ]
        assert [t.output_tokens for t in chat_turns] == usage
    for turn in [*one, *two]:
        assert turn.steps == 1
        assert turn.duration_s is not None and turn.duration_s > 0
    assert one[1].think_s >= 0

    data = gzip.decompress(out.read_bytes())
    for secret in (*PROMPTS, first, second, TOKEN, "SECRET"):
        assert secret.encode() not in data


def test_a_refused_token_exits_3_without_the_token(
    era_d: EraSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "t.jsonl.gz"
    argv = ["trace", "export", "--host", era_d.url, "--token", "not-a-token-xyz"]
    assert main([*argv, "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert "refused" in err and "not-a-token-xyz" not in err
    assert not out.exists()
