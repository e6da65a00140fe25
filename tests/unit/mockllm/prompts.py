"""A read prompt for the dialect tests: a streamed, prompted request, fields overridable."""

from __future__ import annotations

from typing import Any

from loadtest.mockllm.prompt import Prompt


def read_prompt(**fields: Any) -> Prompt:
    values: dict[str, Any] = {
        "model": "m",
        "stream": True,
        "include_usage": True,
        "input_tokens": 3,
        "control": None,
        "prompted": True,
        "results": (),
        "tools": frozenset({"execute"}),
    }
    return Prompt(**(values | fields))
