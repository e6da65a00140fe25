"""The in-prompt control block: one turn's shape, asked for in that turn's prompt.

A branch of Coder's scaletest (``scaletest/chatcontrol``, not merged: protocol §10.2) prefixed
a turn's prompt with ``<coder-scaletest-control>{"v":1,"tool_calls_this_turn":N,"tool":
"execute","command":"echo scaletest"}</coder-scaletest-control>``, and its ``llmmock``
answered that turn with one call of ``tool`` per request until N tool results followed the
user message. Coder's merged llmmock (``scaletest/llmmock/openai_toolcalls.go``) reads no
prompt; the block is chatload's extension, kept in that shape so one mock serves both, with
keys of our own for sub-agents. Coder only looked at the start of the prompt; we accept the
block anywhere in it. Every key is optional: an absent one leaves the server's setting.

Keys (``v`` must be 1 if given):
  ``tool_calls_this_turn``  N: calls of ``tool`` before anything else this turn
  ``tool``, ``command``     the tool to call and its ``{"command": ...}``
  ``subagents_this_turn``   S: then S times ``spawn_agent``, each followed by ``wait_agent``
  ``subagent_tool_calls``   K: the tool calls each sub-agent's own turn makes (written into
                            the ``spawn_agent`` prompt as the child's control block)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson

START: Final = "<coder-scaletest-control>"
END: Final = "</coder-scaletest-control>"

_COUNTS: Final = ("tool_calls_this_turn", "subagents_this_turn", "subagent_tool_calls")
_TEXTS: Final = ("tool", "command")
_KEYS: Final = frozenset({"v", *_COUNTS, *_TEXTS})


@dataclass(frozen=True, slots=True)
class Control:
    """One turn's shape as its prompt asks for it; None where the block says nothing."""

    tool_calls_this_turn: int | None = None
    tool: str | None = None
    command: str | None = None
    subagents_this_turn: int | None = None
    subagent_tool_calls: int | None = None


def render(**keys: Any) -> str:
    """A control block holding ``keys`` (``v`` first), as chatload writes into a prompt."""
    return START + orjson.dumps({"v": 1, **keys}).decode() + END


def find_control(text: str) -> Control | None:
    """The control block in ``text``, if any. Raises ValueError on a malformed one, as Coder
    did: a typo should fail the test, not silently run a turn of another shape."""
    start = text.find(START)
    if start < 0:
        return None
    end = text.find(END, start)
    if end < 0:
        raise ValueError("control block: missing closing sentinel")
    try:
        raw = orjson.loads(text[start + len(START) : end])
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"control block: invalid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError("control block: want a JSON object")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ValueError(
            f"control block: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})"
        )
    if raw.get("v", 1) != 1:
        raise ValueError("control block: v must be 1")
    for key in _COUNTS:
        value = raw.get(key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 0
        ):
            raise ValueError(f"control block: {key} must be a non-negative integer")
    for key in _TEXTS:
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"control block: {key} must be a non-empty string")
    return Control(**{key: raw.get(key) for key in (*_COUNTS, *_TEXTS)})
