"""Error bodies in each provider's shape: what each SDK reads to raise its own error class."""

from __future__ import annotations

import pytest

from loadtest.mockllm.errors import anthropic_error, openai_error


def test_openai_errors_carry_type_and_code() -> None:
    assert openai_error("rate_limit", "slow down") == {
        "error": {
            "message": "slow down",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    assert openai_error("http_500", "boom")["error"]["code"] is None


def test_anthropic_errors_carry_their_own_type() -> None:
    assert anthropic_error("overloaded", "busy") == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "busy"},
    }
    assert anthropic_error("unauthorized", "no")["error"]["type"] == "authentication_error"


def test_an_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        openai_error("teapot", "x")
