"""The pure planner: from config, prompt and a random source, what one reply will be and when.

Every draw comes from a ``random.Random`` seeded by (seed, request number), so with a seed
request N of a run gets the same fault, timing and text whatever the concurrency.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Final

import orjson

from loadtest.mockllm.coder_tools import SPAWN_AGENT, SUBAGENT_TYPE, WAIT_AGENT
from loadtest.mockllm.config import MockConfig
from loadtest.mockllm.control import Control, render
from loadtest.mockllm.faults import Fault, pick_fault
from loadtest.mockllm.prompt import Prompt

#: Words of the mock's replies; each token after the first carries its leading space, as
#: BPE tokens do.
VOCABULARY: Final = (
    "the", "mock", "model", "streams", "a", "reply", "one", "token", "at", "time", "for",
    "load", "test", "of", "coder", "chat",
)  # fmt: skip

#: ``spawn_agent``'s result is JSON ``{"chat_id", "title", "status", "type"}``
#: (coderd/x/chatd/subagent.go, ``toolJSONResponse``); this finds the id in other wrappings
#: too, JSON-escaped inside a string included.
_CHAT_ID: Final = re.compile(r'chat_id\\?"\s*:\s*\\?"([^"\\]+)')


@dataclass(frozen=True, slots=True)
class ReplyShape:
    """One turn's shape: the server's settings, overridden key by key by a control block."""

    tool_calls: int
    tool: str
    command: str
    subagents: int
    #: Tool calls each sub-agent's turn makes; None leaves it to the server's settings.
    subagent_tool_calls: int | None

    @classmethod
    def of(cls, config: MockConfig, control: Control | None) -> ReplyShape:
        control = control or Control()

        def pick(asked: Any, default: Any) -> Any:
            return default if asked is None else asked

        return cls(
            tool_calls=pick(control.tool_calls_this_turn, config.tool_calls_per_turn),
            tool=pick(control.tool, config.tool_name),
            command=pick(control.command, config.tool_call_command),
            subagents=pick(control.subagents_this_turn, config.subagents_per_turn),
            subagent_tool_calls=control.subagent_tool_calls,
        )


@dataclass(frozen=True, slots=True)
class Call:
    """One tool call: the reply's whole content."""

    tool: str
    #: The arguments as JSON text, sent in one delta as Coder's llmmock does.
    arguments: str


@dataclass(frozen=True, slots=True)
class Stuck:
    """The turn's shape cannot go on: the reply is this text instead, ending the turn."""

    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    fault: Fault | None
    ttft_s: float
    #: Seconds between tokens after the first; 0 for as fast as possible.
    interval_s: float
    #: The output tokens: text pieces, or the tool call's JSON arguments as one piece.
    pieces: tuple[str, ...]
    #: The tool called (then ``pieces`` are its arguments), or None for a text reply.
    tool: str | None
    #: Why this text reply breaks off the turn's shape (``Stuck``), or None.
    stuck: str | None
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


def chat_id_of(result: str) -> str | None:
    """The child's ``chat_id`` in a ``spawn_agent`` result, or None."""
    try:
        value = orjson.loads(result)
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict) and isinstance(value.get("chat_id"), str) and value["chat_id"]:
        return str(value["chat_id"])
    match = _CHAT_ID.search(result)
    return match.group(1) if match else None


def _arguments(**values: Any) -> str:
    return orjson.dumps(values).decode()


def next_call(config: MockConfig, prompt: Prompt) -> Call | Stuck | None:
    """This request's step of the turn: a tool call, or None for the text that ends the turn.

    1. Coder's llmmock (scaletest/llmmock/openai_toolcalls.go): while fewer than N tool
       results follow the last user message and the request offers the tool, call it.
    2. Our extension: then S sub-agents, each a ``spawn_agent`` and, on the request bringing
       its result, a ``wait_agent`` on the ``chat_id`` in that result. Each tool only if
       the request offers it (Coder offers the sub-agent tools to root chats only).
    Nothing is remembered between requests: the request's messages say where the turn is.
    """
    if not prompt.prompted:
        return None
    shape = ReplyShape.of(config, prompt.control)
    if prompt.tool_results < shape.tool_calls and shape.tool in prompt.tools:
        return Call(shape.tool, _arguments(command=shape.command))
    spawned = [r for r in prompt.results if r.tool == SPAWN_AGENT]
    waited = sum(r.tool == WAIT_AGENT for r in prompt.results)
    if len(spawned) > waited and WAIT_AGENT in prompt.tools:
        chat_id = chat_id_of(spawned[waited].text)
        if chat_id is None:
            return Stuck(
                "mock-llm: the spawn_agent result holds no chat_id, so there is no sub-agent "
                "to wait for; ending the turn."
            )
        return Call(WAIT_AGENT, _arguments(chat_id=chat_id))
    if len(spawned) < shape.subagents and SPAWN_AGENT in prompt.tools:
        number = len(spawned) + 1
        child: dict[str, int] = {"subagents_this_turn": 0}  # depth 1, as Coder's
        if shape.subagent_tool_calls is not None:
            child["tool_calls_this_turn"] = shape.subagent_tool_calls
        task = f"{render(**child)}\nMock sub-agent task {number} of {shape.subagents}."
        title = f"mock sub-agent {number}"
        return Call(SPAWN_AGENT, _arguments(type=SUBAGENT_TYPE, prompt=task, title=title))
    return None


def make_plan(config: MockConfig, prompt: Prompt, rng: random.Random) -> Plan:
    fault = pick_fault(config.fault_probabilities(), rng.random())
    ttft_s = config.ttft.sample(rng)
    step = next_call(config, prompt)
    pieces: tuple[str, ...]
    if isinstance(step, Call):
        tool, pieces = step.tool, (step.arguments,)
    elif isinstance(step, Stuck):
        tool, pieces = None, (step.reason,)
    else:
        tool = None
        first, *rest = (rng.choice(VOCABULARY) for _ in range(config.output_tokens))
        pieces = (first.capitalize(), *(" " + word for word in rest))
    return Plan(
        fault=fault,
        ttft_s=ttft_s,
        interval_s=1.0 / config.tokens_per_s if config.tokens_per_s > 0 else 0.0,
        pieces=pieces,
        tool=tool,
        stuck=step.reason if isinstance(step, Stuck) else None,
        break_after=rng.randrange(len(pieces)),
        silence_s=config.silence_s,
        uid=f"{rng.getrandbits(96):024x}",
    )
