"""What the mock reads from any request: word counts, texts, tool results, refusals."""

from __future__ import annotations

from typing import Any

import pytest

from loadtest.mockllm import anthropic_messages, openai_chat, openai_responses
from loadtest.mockllm.prompt import (
    PromptToolResult,
    items,
    model_of,
    results,
    text_of,
    tool_names,
    words,
)

DIALECTS = [openai_chat, openai_responses, anthropic_messages]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "body",
    [[], {"messages": [], "input": []}, {"model": "m", "messages": "x", "input": 3}],
)
def test_reads_reject_malformed_bodies(dialect: Any, body: Any) -> None:
    with pytest.raises(ValueError):
        dialect.read(body)


def test_words_count_texts_in_any_content_shape() -> None:
    assert words("two words") == 2
    assert words([{"type": "text", "text": "a b c"}, {"output": "d"}, {"content": ["e f"]}]) == 6
    assert words(None) == words(7) == 0


def test_text_of_joins_the_text_parts_only() -> None:
    assert text_of("plain") == "plain"
    assert text_of([{"text": "a"}, {"image": "x"}, "loose", {"text": "b"}]) == "a\nb"
    assert text_of(None) == ""


def test_results_are_named_by_their_call_or_left_unnamed() -> None:
    found = [("c1", "ok"), ("c2", [{"text": "later"}]), (None, "orphan")]
    assert results(found, {"c1": "execute", "c2": 3}) == (
        PromptToolResult("execute", "ok"),
        PromptToolResult("", "later"),
        PromptToolResult("", "orphan"),
    )


def test_tool_names_read_both_shapes() -> None:
    tools: list[dict[str, Any]] = [
        {"function": {"name": "execute"}},
        {"name": "spawn_agent"},
        {"name": 3},
        {},
    ]
    assert tool_names(tools) == {"execute", "spawn_agent"}


@pytest.mark.parametrize("body", [{}, {"model": ""}, {"model": 3}])
def test_a_request_without_a_model_is_refused_by_name(body: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="model is required"):
        model_of(body)


def test_malformed_lists_say_what_they_are() -> None:
    with pytest.raises(ValueError, match="messages must be a list"):
        items("x", "messages")
    with pytest.raises(ValueError, match="each of tools must be a JSON object"):
        items([1], "tools")
