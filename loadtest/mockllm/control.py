"""Coder's in-prompt scaletest control block, so chatload and ``coder exp scaletest chat`` can
share one mock.

Coder's ``scaletest/chatcontrol`` prefixes a turn's prompt with
``<coder-scaletest-control>{"v":1,"tool_calls_this_turn":N,"tool":"execute",
"command":"echo scaletest"}</coder-scaletest-control>``; its ``llmmock`` then answers each
request of that turn with one call of ``tool`` until N tool results follow the user message.
Coder only looks at the start of the prompt; we accept the block anywhere in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import orjson

START: Final = "<coder-scaletest-control>"
END: Final = "</coder-scaletest-control>"


@dataclass(frozen=True, slots=True)
class Control:
    tool_calls_this_turn: int
    tool: str = "execute"
    command: str = "echo scaletest"


def find_control(text: str) -> Control | None:
    """The control block in ``text``, if any. Raises ValueError on a malformed one, as Coder
    does: a typo should fail the test, not silently run without tool calls."""
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
    version = raw.get("v") or 1
    calls = raw.get("tool_calls_this_turn", 0)
    tool = raw.get("tool") or "execute"
    command = raw.get("command") or "echo scaletest"
    if version != 1:
        raise ValueError("control block: v must be 1")
    if not isinstance(calls, int) or isinstance(calls, bool) or calls < 0:
        raise ValueError("control block: tool_calls_this_turn must be a non-negative integer")
    if not isinstance(tool, str) or not isinstance(command, str):
        raise ValueError("control block: tool and command must be strings")
    return Control(calls, tool, command)
