"""What the mock needs from a request, whichever API it came through."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from loadtest.mockllm.control import Control


@dataclass(frozen=True, slots=True)
class PromptToolResult:
    """A tool's result after the last user prompt: what the mock's turn has done so far."""

    #: The tool called, found by the call id among the request's calls; "" if none has it.
    tool: str
    #: The result's text (``spawn_agent``'s holds the child's ``chat_id``).
    text: str


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
    #: Whether the request has a user prompt at all: without one, Coder's llmmock calls no
    #: tool (scaletest/llmmock/openai_toolcalls.go ``needsOpenAIToolCall``).
    prompted: bool
    #: Tool results after the last user prompt, in order: where this turn has got to.
    results: tuple[PromptToolResult, ...]
    #: Names of the function tools the request declares.
    tools: frozenset[str]

    @property
    def tool_results(self) -> int:
        """How many tool results follow the last user prompt (Coder's count)."""
        return len(self.results)


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


def results(
    found: Iterable[tuple[Any, Any]], calls: dict[Any, Any]
) -> tuple[PromptToolResult, ...]:
    """``(call id, content)`` pairs as results, each named by the call of that id in
    ``calls`` (call id -> tool name)."""
    named = []
    for call_id, content in found:
        tool = calls.get(call_id) if isinstance(call_id, str) else None
        named.append(PromptToolResult(tool if isinstance(tool, str) else "", text_of(content)))
    return tuple(named)


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
