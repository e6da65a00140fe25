"""``chatload mock-llm``'s flags and start-up: config layering, the API key from the
environment (never logged), and a bad config refused with exit 2 before serving."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import pytest

from loadtest.mockllm import command
from loadtest.mockllm.config import MockConfig


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.configure(parser)
    return parser.parse_args(argv)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Calls of ``serve`` (nothing listens), with the app's state read back."""
    calls: list[dict[str, Any]] = []

    def fake_app(config: MockConfig, api_key: str | None) -> dict[str, Any]:
        return {"config": config, "api_key": api_key}

    def fake_serve(app: Any, **kwargs: Any) -> int:
        calls.append(kwargs | app)
        return 0

    monkeypatch.setattr(command, "serve", fake_serve)
    monkeypatch.setattr(command, "create_app", fake_app)
    monkeypatch.delenv(command.ENV_API_KEY, raising=False)
    return calls


def test_flags_layer_over_the_config_file(tmp_path: Path, served: list[dict[str, Any]]) -> None:
    config = tmp_path / "mock.toml"
    config.write_text('output_tokens = 7\nttft = "uniform:0.1,0.5"\ntokens_per_s = 80\n')
    args = _parse("--config", str(config), "--tokens-per-s", "10", "--models", "a,b", "--port", "0")
    assert command.main(args) == 0
    (call,) = served
    assert (call["host"], call["port"]) == ("127.0.0.1", 0)
    tuned = call["config"]
    assert (tuned.output_tokens, tuned.tokens_per_s, tuned.models) == (7, 10.0, ["a", "b"])
    assert (tuned.ttft.dist, tuned.ttft.max, call["api_key"]) == ("uniform", 0.5, None)
    assert call["banner"]("http://h:1") == "chatload mock-llm listening on http://h:1/v1"


def test_a_bad_config_exits_2_naming_the_key(
    tmp_path: Path, served: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "mock.toml"
    config.write_text("output_tokens = 0\n")
    with caplog.at_level(logging.ERROR, "loadtest.mockllm"):
        assert command.main(_parse("--config", str(config))) == 2
    assert served == [] and "output_tokens" in caplog.text


def test_the_api_key_comes_from_the_environment_and_is_never_logged(
    monkeypatch: pytest.MonkeyPatch, served: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(command.ENV_API_KEY, "env-sekret")
    with caplog.at_level(logging.INFO, "loadtest.mockllm"):
        assert command.main(_parse()) == 0
    assert "required" in caplog.text and "env-sekret" not in caplog.text
    assert served[-1]["api_key"] == "env-sekret"
    with caplog.at_level(logging.INFO, "loadtest.mockllm"):
        assert command.main(_parse("--api-key", "flag-sekret")) == 0
    assert "flag-sekret" not in caplog.text and served[-1]["api_key"] == "flag-sekret"


def test_every_tuning_key_is_a_flag_with_its_help() -> None:
    parser = argparse.ArgumentParser()
    command.configure(parser)
    text = parser.format_help()
    for flag in ("--ttft", "--output-tokens", "--tool-calls-per-turn", "--fault-cut", "--seed"):
        assert flag in text
    assert "/__mock/config" in text and command.ENV_API_KEY in text
