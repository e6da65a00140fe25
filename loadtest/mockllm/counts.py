"""What the mock served, for ``GET /__mock/counts``: plain integers, bumped once per request
or token, never per byte."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from loadtest.mockllm.faults import Fault

APIS: Final = ("chat_completions", "responses", "messages", "models")


@dataclass(slots=True)
class Counts:
    requests: int = 0
    by_api: dict[str, int] = field(default_factory=lambda: dict.fromkeys(APIS, 0))
    #: Replies sent in full, streamed or not.
    streams_completed: int = 0
    #: Tokens actually sent, including those of replies a fault or the client broke off.
    output_tokens: int = 0
    #: Input tokens of the requests that got a reply started.
    input_tokens: int = 0
    faults: dict[Fault, int] = field(default_factory=lambda: dict.fromkeys(Fault, 0))

    def request(self, api: str) -> None:
        self.requests += 1
        self.by_api[api] += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "requests_by_api": dict(self.by_api),
            "streams_completed": self.streams_completed,
            "output_tokens": self.output_tokens,
            "input_tokens": self.input_tokens,
            "faults": {fault.value: n for fault, n in self.faults.items()},
        }
