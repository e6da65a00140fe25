"""The simulator's tuning and faults: one pydantic model, from a TOML file, flags and PATCH
(all three through ``loadtest/config.py``; each field's description is its flag's help).

Delays are milliseconds of real time; only Coder's own retry backoff (1, 2, 4 ... 60 s) is
multiplied by ``time_scale``, so a test can run 25 retries in milliseconds while the LLM's
latency profile stays what it says.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from loadtest.config import Distribution
from loadtest.protocol.constants import REQUIRES_ACTION_TIMEOUT_S
from loadtest.protocol.models import ErrorKind
from loadtest.sim.faults import PART_FAULTS, PART_REORDER, FaultRates, fault_model

#: Coder's ``chatretry.MaxAttempts``: an error that fails this many attempts is final.
MAX_ATTEMPTS = 25
#: The concurrent-agent gate's pools without an enterprise licence (coderd/x/chatd
#: ARCHITECTURE.md: "up to five top-level chats and ten subagent chats at once").
UNLICENSED_ROOT = 5
UNLICENSED_SUBAGENTS = 10


def _probability(description: str) -> Any:
    """A probability field (0..1), shown as P on the command line."""
    return Field(0.0, ge=0, le=1, description=description, json_schema_extra={"metavar": "P"})


class FaultSettings(FaultRates):
    """How the faults play (their rates are ``faults.SIM_FAULTS``' fields, see ``Faults``)."""

    stall_ms: int = Field(2000, ge=0, description="fault: how long a stall lasts, real ms")
    close_code: int = Field(
        1011, ge=1000, le=4999, description="fault: the code of a --close-rate close"
    )

    def part_faults(self, rng: random.Random, n: int) -> list[str | None] | None:
        """The integrity fault (its name) of each of a step's ``n`` deltas, or None when none
        is on. The last delta is never faulted, nor the one after a reorder (it goes first)."""
        rates = [(fault.name, self.rate(fault)) for fault in PART_FAULTS]
        if not any(rate for _, rate in rates):
            return None
        faults: list[str | None] = [None] * n
        index = 0
        while index < n - 1:
            draw = rng.random()
            for name, rate in rates:
                if draw < rate:
                    faults[index] = name
                    break
                draw -= rate
            index += 2 if faults[index] == PART_REORDER else 1
        return faults


_FAULTS_DOC = """Transport faults for testing clients; each ``*_rate`` is a probability per turn
(``stream_error_rate``: per stream connection; ``part_*_rate``: per text delta). At most one
turn fault hits a turn, mid-way."""

if TYPE_CHECKING:
    Faults = FaultSettings  # the rates are read by name: ``faults.rate(fault)``
else:
    Faults = fault_model("Faults", FaultSettings, ("turn", "stream", "part"), _FAULTS_DOC)


class SimConfig(BaseModel):
    """Everything that can be tuned while the server runs (``PATCH /__sim/config``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    acquire_ms: Distribution = Field(
        default_factory=lambda: Distribution(value=0),
        description="from a post to the daemon taking the chat up and calling the LLM, in ms, "
        "as --ttft (Coder's daemons poll every 1000)",
        json_schema_extra={"flag": "--acquire"},
    )
    ttft_ms: Distribution = Field(
        default_factory=lambda: Distribution(dist="lognormal", p50=300, sigma=0.5),
        description="time to first output after 'running', in ms: N (constant), constant:N, "
        "uniform:MIN,MAX or lognormal:P50[,SIGMA]",
        json_schema_extra={"flag": "--ttft"},
    )
    parts_per_turn: int = Field(20, ge=0, description="text deltas per generation step")
    part_gap_ms: Distribution = Field(
        default_factory=lambda: Distribution(value=20),
        description="gap before each delta in ms, as --ttft",
        json_schema_extra={"flag": "--part-gap"},
    )
    part_chars: int = Field(24, ge=1, le=65536, description="characters of text per delta")
    reasoning_parts: int = Field(0, ge=0, description="reasoning deltas before the text")
    tool_steps: int = Field(
        0,
        ge=0,
        description="tool calls per turn (execute, one per LLM step, as Coder's llmmock): "
        "tool-call part, assistant and tool messages, the next step; a prompt's control block "
        "overrides it per turn",
    )
    tool_time_ms: Distribution = Field(
        default_factory=lambda: Distribution(value=0),
        description="how long a tool the server runs (execute, in the chat's workspace) takes, "
        "in ms, as --ttft",
        json_schema_extra={"flag": "--tool-time"},
    )
    subagents_per_turn: int = Field(
        0,
        ge=0,
        le=16,
        description="sub-agents each root chat's turn spawns (spawn_agent, then wait_agent for "
        "its report) after its tool steps; a prompt's control block overrides it per turn",
        json_schema_extra={"metavar": "N"},
    )
    workspaces: int = Field(
        0,
        ge=0,
        le=100_000,
        description="workspaces named scaletest-0 ... (each with a connected agent) that "
        "GET /api/v2/workspaces lists, as Coder's scaletest makes them",
        json_schema_extra={"metavar": "N"},
    )
    output_tokens: int | None = Field(
        None,
        ge=0,
        description="usage.output_tokens of each assistant message (none: characters / 4)",
    )
    time_scale: float = Field(
        1.0,
        ge=0,
        description="multiply the retry backoff slept (min(2^(n-1), 60) s) by X; delay_ms "
        "stays Coder's",
    )
    error_rate: float = _probability("probability a turn hits provider errors")
    requires_action_ratio: float = _probability(
        "era d: share of turns whose first step ends in a dynamic tool call the client must "
        "answer (requires_action, then POST /tool-results)"
    )
    requires_action_timeout_ms: int = Field(
        int(REQUIRES_ACTION_TIMEOUT_S * 1000),
        ge=1,
        description="era d: how long a requires_action chat waits for POST /tool-results "
        "before chatd answers its calls with cancellation results and runs on, in ms "
        "(Coder: 5 minutes)",
        json_schema_extra={"flag": "--requires-action-timeout", "metavar": "MS"},
    )
    partial_output_ratio: float = _probability(
        "share of failed attempts that stream some output before failing (era D then throws "
        "it away with preview_reset)"
    )
    error_kind: ErrorKind = Field(
        ErrorKind.OVERLOADED,
        description=f"ChatError kind of those errors; one of: {', '.join(ErrorKind)}",
        json_schema_extra={"metavar": "KIND"},
    )
    error_retries: int = Field(
        2,
        ge=0,
        le=MAX_ATTEMPTS,
        description=f"failed attempts before the provider recovers; {MAX_ATTEMPTS} fails every "
        "attempt -> error",
    )
    rate_limit_per_minute: int = Field(
        512,
        ge=-1,
        description="API requests a minute per user and URL path (sliding window, as Coder's "
        "httprate), 429 beyond; -1 disables",
        json_schema_extra={"flag": "--rate-limit"},
    )
    agent_limit: int | None = Field(
        None,
        ge=1,
        description="Coder's concurrent-agent gate (section 8.7): at most N root chats' turns "
        "generate at once, deployment-wide; the rest wait queued_for_capacity, with no output",
        json_schema_extra={"metavar": "N"},
    )
    subagent_limit: int | None = Field(
        None,
        ge=1,
        description="the gate's sub-agent pool: at most N sub-agent chats at once (default, "
        "with the gate on: 10)",
        json_schema_extra={"metavar": "N"},
    )
    agent_gate: bool = Field(
        False,
        description="turn the concurrent-agent gate on with Coder's unlicensed limits: 5 root "
        "and 10 sub-agent chats at once (--agent-limit/--subagent-limit change either)",
    )
    llm_tokens_per_s: float | None = Field(
        None,
        gt=0,
        description="an LLM throughput shared by the turns generating at once: each delta (and "
        "a 50-token prefill before the first) waits its share, so latency degrades smoothly "
        "with concurrency",
        json_schema_extra={"metavar": "TPS"},
    )
    faults: Faults = Field(default_factory=Faults)
    seed: int | None = Field(None, description="seed of the generator's random choices")
    llm_url: str | None = Field(
        None,
        description="call an OpenAI-compatible LLM at URL (POST {URL}/chat/completions, "
        "streaming) for each turn; an API-configured provider's base_url wins over URL",
        json_schema_extra={"metavar": "URL"},
    )
    build_version: str | None = Field(
        None,
        description="the version /api/v2/buildinfo reports (none: the era's, e.g. "
        "v2.38.0+chatload-sim); a -devel one makes clients tell the era by its routes",
        json_schema_extra={"metavar": "VERSION"},
    )
    agents_experiment: bool = Field(
        True,
        description="whether GET /api/v2/experiments lists agents (eras a/b gate chats on it)",
        json_schema_extra={"flag": None},
    )

    def pool_limit(self, subagent: bool) -> int | None:
        """The gate's limit for a pool (None: no gate). Coder's unlicensed deployment admits
        "up to five top-level chats and ten subagent chats at once" (chatd ARCHITECTURE.md)."""
        if not self.agent_gate and self.agent_limit is None and self.subagent_limit is None:
            return None
        if subagent:
            return self.subagent_limit if self.subagent_limit is not None else UNLICENSED_SUBAGENTS
        return self.agent_limit if self.agent_limit is not None else UNLICENSED_ROOT
