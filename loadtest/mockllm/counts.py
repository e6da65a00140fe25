"""What the mock served, for ``GET /__mock/counts``: plain integers, bumped once per request
or token, never per byte."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from loadtest.mockllm.coder_tools import EXECUTE, SPAWN_AGENT, WAIT_AGENT
from loadtest.mockllm.faults import Fault

APIS: Final = ("chat_completions", "responses", "messages", "models")
#: Tools every count lists, called or not: Coder's ``execute`` and its sub-agent tools.
TOOLS: Final = (EXECUTE, SPAWN_AGENT, WAIT_AGENT)


@dataclass(slots=True)
class LlmCounts:
    requests: int = 0
    by_api: dict[str, int] = field(default_factory=lambda: dict.fromkeys(APIS, 0))
    #: Replies sent in full, streamed or not.
    streams_completed: int = 0
    #: Tokens actually sent, including those of replies a fault or the client broke off.
    output_tokens: int = 0
    #: Input tokens of the requests that got a reply started.
    input_tokens: int = 0
    faults: dict[Fault, int] = field(default_factory=lambda: dict.fromkeys(Fault, 0))
    #: Replies sent in full that were text: each ends a turn (or a sub-agent's turn).
    text_replies: int = 0
    #: Replies sent in full that were a tool call, by tool name: a turn's other steps.
    tool_calls: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOOLS, 0))
    #: Text replies that ended a turn early: a spawn_agent result without a chat_id.
    wait_agent_without_chat_id: int = 0

    def request(self, api: str) -> None:
        self.requests += 1
        self.by_api[api] += 1

    def completed(self, tool: str | None, stuck: str | None) -> None:
        """A reply sent in full: a call of ``tool``, or text (``stuck`` if it broke off)."""
        self.streams_completed += 1
        if tool is None:
            self.text_replies += 1
            self.wait_agent_without_chat_id += stuck is not None
        else:
            self.tool_calls[tool] = self.tool_calls.get(tool, 0) + 1

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "requests_by_api": dict(self.by_api),
            "streams_completed": self.streams_completed,
            "output_tokens": self.output_tokens,
            "input_tokens": self.input_tokens,
            "faults": {fault.value: n for fault, n in self.faults.items()},
            "text_replies": self.text_replies,
            "tool_calls": dict(self.tool_calls),
            "wait_agent_without_chat_id": self.wait_agent_without_chat_id,
        }
