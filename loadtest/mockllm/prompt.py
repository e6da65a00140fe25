"""What the mock needs from a request, whichever API it came through."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from loadtest.mockllm.control import Control


@dataclass(frozen=True, slots=True)
class Prompt:
    model: str
    stream: bool
    #: OpenAI chat only: ``stream_options.include_usage``.
    include_usage: bool
    #: Whitespace-separated words of every text in the request, at least 1: a rough count,
    #: stable enough to check usage end to end.
    input_tokens: int
    #: The control block of the last user prompt, if it has one.
    control: Control | None
    #: Tool results after the last user prompt: how many tool calls this turn has made.
    tool_results: int
    #: Names of the function tools the request declares.
    tools: frozenset[str]


def words(value: Any) -> int:
    """Words in a message's content: a string, or parts holding ``text``/``content``/``output``."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(words(part) for part in value)
    if isinstance(value, dict):
        return sum(words(value.get(key)) for key in ("text", "content", "output"))
    return 0


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the ``text`` of its parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object")
    return value


def items(value: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise ValueError(f"{what} must be a list")
    return [obj(item, f"each of {what}") for item in value]


def tool_names(tools: Iterable[dict[str, Any]]) -> frozenset[str]:
    """Names of function tools in either shape: ``{"name"}`` or ``{"function": {"name"}}``."""
    names = set()
    for tool in tools:
        function = tool.get("function")
        name = function.get("name") if isinstance(function, dict) else tool.get("name")
        if isinstance(name, str):
            names.add(name)
    return frozenset(names)


def model_of(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ValueError("model is required")
    return model
