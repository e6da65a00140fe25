"""What one turn will do, decided up front from the config and a random source: pure.

The player (``player.py``) then plays a plan out in time. Delays here are unscaled simulated seconds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

from loadtest.mockllm.coder_tools import EXECUTE, SPAWN_AGENT, WAIT_AGENT
from loadtest.mockllm.control import Control
from loadtest.sim.chaterror import failure
from loadtest.sim.config import MAX_ATTEMPTS, SimConfig
from loadtest.sim.events import Failure
from loadtest.sim.faults import TURN_FAULTS

_SENTENCE = (
    "the chat server streams each token of the answer as a small delta so the client can "
    "render it at once while the model is still thinking about the next part of the reply"
)
_WORDS = _SENTENCE.split(" ")
#: A fixed corpus text deltas are cut from: deterministic, and no work per part.
_CORPUS_RNG = random.Random(0)
CORPUS: Final = " ".join(_CORPUS_RNG.choice(_WORDS) for _ in range(40_000))


def retry_delay_s(attempt: int, retry_after_s: float = 0.0) -> float:
    """chatretry's wait before retrying after failed attempt ``attempt`` (1-based): the
    backoff (1 s doubling, at most 60), or the provider's ``Retry-After`` if longer."""
    return max(float(min(2 ** (attempt - 1), 60)), retry_after_s)


@dataclass(frozen=True, slots=True)
class LlmStep:
    """One LLM step: reasoning and text deltas, then the tool call it ends in, if any (the
    turn's last step calls none: section 10.4)."""

    #: The tool this step calls (``execute``, ``spawn_agent``, ``wait_agent``), or None.
    call: str | None
    reasoning: tuple[str, ...]
    text: tuple[str, ...]
    #: Seconds before each delta (reasoning first, then text).
    gaps: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class TurnPlan:
    ttft: float
    steps: tuple[LlmStep, ...]
    #: Attempts that fail before output starts (0: none).
    failed_attempts: int
    failure: Failure | None
    #: A transport fault to inject, and after how many deltas of the first step.
    fault: str | None
    fault_at: int
    output_tokens: int | None

    @property
    def final_failure(self) -> bool:
        """Whether the failures exhaust the retries (or cannot be retried)."""
        if self.failure is None or self.failed_attempts == 0:
            return False
        return not self.failure.retryable or self.failed_attempts >= MAX_ATTEMPTS


def _chunks(rng: random.Random, count: int, size: int) -> tuple[str, ...]:
    """``count`` consecutive ``size``-character slices of the corpus from a random point."""
    span = len(CORPUS) - size
    start = rng.randrange(span)
    if start + count * size <= span:
        return tuple([CORPUS[at : at + size] for at in range(start, start + count * size, size)])
    offsets = ((start + i * size) % span for i in range(count))
    return tuple(CORPUS[offset : offset + size] for offset in offsets)


@dataclass(frozen=True, slots=True)
class TurnShape:
    """What one turn does with tools: ``tools`` calls of ``tool``, then ``subagents`` times
    ``spawn_agent`` and ``wait_agent`` (as chatload's mock LLM, ``mockllm/plan.py``)."""

    tools: int
    tool: str
    command: str
    subagents: int
    #: Tool calls each sub-agent's own turn makes (None: the server's ``tool_steps``).
    subagent_tools: int | None

    @classmethod
    def of(cls, config: SimConfig, control: Control | None, root: bool) -> TurnShape:
        """The server's settings, overridden key by key by the prompt's control block; a
        sub-agent spawns none (depth 1, section 10.3)."""
        control = control or Control()
        tools = control.tool_calls_this_turn
        subagents = control.subagents_this_turn
        return cls(
            tools=config.tool_steps if tools is None else tools,
            tool=control.tool or EXECUTE,
            command=control.command or "echo chatload",
            subagents=(config.subagents_per_turn if subagents is None else subagents)
            if root
            else 0,
            subagent_tools=control.subagent_tool_calls,
        )

    @property
    def calls(self) -> list[str]:
        """The tool each step calls, in order (the last step, with no call, not listed)."""
        return [self.tool] * self.tools + [SPAWN_AGENT, WAIT_AGENT] * self.subagents


def plan(
    config: SimConfig, rng: random.Random, provider: str, shape: TurnShape | None = None
) -> TurnPlan:
    calls: list[str | None] = [*(shape.calls if shape else [EXECUTE] * config.tool_steps), None]
    steps = []
    for index, call in enumerate(calls):
        reasoning = _chunks(rng, config.reasoning_parts if index == 0 else 0, config.part_chars)
        text = _chunks(rng, config.parts_per_turn, config.part_chars)
        gaps = config.part_gap_ms.samples(rng, len(reasoning) + len(text), scale=0.001)
        steps.append(LlmStep(call, reasoning, text, gaps))
    failed, hit = 0, None
    if config.error_rate and rng.random() < config.error_rate:
        hit = failure(config.error_kind, provider)
        failed = config.error_retries if hit.retryable else 1
    faults = config.faults
    rates = [(fault.name, faults.rate(fault)) for fault in TURN_FAULTS]
    fault = next((name for name, rate in rates if rate and rng.random() < rate), None)
    first = steps[0]
    return TurnPlan(
        ttft=config.ttft_ms.sample(rng) / 1000,
        steps=tuple(steps),
        failed_attempts=failed,
        failure=hit,
        fault=fault,
        fault_at=(len(first.reasoning) + len(first.text)) // 2,
        output_tokens=config.output_tokens,
    )
