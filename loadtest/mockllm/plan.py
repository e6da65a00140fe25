"""The pure planner: from config, prompt and a random source, what one reply will be and when.

Every draw comes from a ``random.Random`` seeded by (seed, request number), so with a seed
request N of a run gets the same fault, timing and text whatever the concurrency.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

import orjson

from loadtest.mockllm.config import MockConfig
from loadtest.mockllm.faults import Fault, pick_fault
from loadtest.mockllm.prompt import Prompt

#: Words of the mock's replies; each token after the first carries its leading space, as
#: BPE tokens do.
VOCABULARY: Final = (
    "the", "mock", "model", "streams", "a", "reply", "one", "token", "at", "time", "for",
    "load", "test", "of", "coder", "chat",
)  # fmt: skip

#: Characters of tool-call arguments per streamed fragment (one output token each).
ARGUMENT_FRAGMENT: Final = 8


@dataclass(frozen=True, slots=True)
class Plan:
    fault: Fault | None
    ttft_s: float
    #: Seconds between tokens after the first; 0 for as fast as possible.
    interval_s: float
    #: The output tokens: text pieces, or the tool call's JSON arguments in fragments.
    pieces: tuple[str, ...]
    #: The tool called (then ``pieces`` are its arguments), or None for a text reply.
    tool: str | None
    #: Tokens sent before a silence or a cut breaks the reply.
    break_after: int
    silence_s: float
    #: Random hex the dialects build ids from.
    uid: str

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def request_rng(seed: int | None, number: int) -> random.Random:
    """The random source of request ``number``: replayable with a seed, fresh without."""
    return random.Random(f"{seed}:{number}") if seed is not None else random.Random()


def planned_tool(config: MockConfig, prompt: Prompt) -> tuple[str, str] | None:
    """(tool, JSON arguments) if this reply should call a tool, else None.

    A control block in the prompt wins over the config. The tool must be one the request
    declares: calling an undeclared tool would make the client fail the turn.
    """
    control = prompt.control
    if control is not None:
        wanted, tool, command = control.tool_calls_this_turn, control.tool, control.command
    else:
        wanted, tool, command = config.tool_calls_per_turn, config.tool_name, config.tool_command
    if prompt.tool_results >= wanted or tool not in prompt.tools:
        return None
    return tool, orjson.dumps({"command": command}).decode()


def make_plan(config: MockConfig, prompt: Prompt, rng: random.Random) -> Plan:
    fault = pick_fault(config.fault_probabilities(), rng.random())
    ttft_s = config.ttft.sample(rng)
    call = planned_tool(config, prompt)
    if call is None:
        tool = None
        first, *rest = (rng.choice(VOCABULARY) for _ in range(config.output_tokens))
        pieces = (first.capitalize(), *(" " + word for word in rest))
    else:
        tool, arguments = call
        pieces = tuple(
            arguments[i : i + ARGUMENT_FRAGMENT]
            for i in range(0, len(arguments), ARGUMENT_FRAGMENT)
        )
    return Plan(
        fault=fault,
        ttft_s=ttft_s,
        interval_s=1.0 / config.tokens_per_s if config.tokens_per_s > 0 else 0.0,
        pieces=pieces,
        tool=tool,
        break_after=rng.randrange(len(pieces)),
        silence_s=config.silence_s,
        uid=f"{rng.getrandbits(96):024x}",
    )
