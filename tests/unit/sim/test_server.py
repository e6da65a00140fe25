"""What the simulator's server adds to serving: tokens hidden in what uvicorn logs."""

from __future__ import annotations

import logging

import pytest

from loadtest.sim.server import RedactTokens


@pytest.mark.parametrize(
    "line",
    [
        "GET /api/v2/chats/x/stream?coder_session_token=abc123&after=1",
        "headers: coder-session-token: abc123",
        "headers: Authorization: Bearer abc123",
    ],
)
def test_tokens_are_redacted_from_log_records(line: str) -> None:
    record = logging.LogRecord("uvicorn", logging.INFO, __file__, 1, "%s", (line,), None)
    assert RedactTokens().filter(record)
    assert "abc123" not in record.getMessage() and "REDACTED" in record.getMessage()


def test_a_line_without_tokens_is_left_alone() -> None:
    record = logging.LogRecord("uvicorn", logging.INFO, __file__, 1, "GET %s", ("/x?a=1",), None)
    RedactTokens().filter(record)
    assert record.getMessage() == "GET /x?a=1"
