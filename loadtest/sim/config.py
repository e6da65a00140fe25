"""The simulator's tuning and faults: one pydantic model, from a TOML file, flags and PATCH.

Delays are milliseconds of real time; only Coder's own retry backoff (1, 2, 4 ... 60 s) is
multiplied by ``time_scale``, so a test can run 25 retries in milliseconds while the LLM's
latency profile stays what it says.
"""

from __future__ import annotations

import math
import random
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loadtest.protocol.models import ErrorKind

#: Coder's ``chatretry.MaxAttempts``: an error that fails this many attempts is final.
MAX_ATTEMPTS = 25


class Dist(BaseModel):
    """A distribution of milliseconds: ``constant`` (``value``), ``uniform`` (``min``..``max``)
    or ``lognormal`` (median ``p50``, log-space spread ``sigma``)."""

    model_config = ConfigDict(extra="forbid")

    dist: Literal["constant", "uniform", "lognormal"] = "constant"
    value: float = Field(0.0, ge=0)
    min: float = Field(0.0, ge=0)
    max: float = Field(0.0, ge=0)
    p50: float = Field(0.0, ge=0)
    sigma: float = Field(0.5, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Dist:
        if self.dist == "uniform" and self.max < self.min:
            raise ValueError("uniform needs min <= max")
        return self

    def sample(self, rng: random.Random) -> float:
        if self.dist == "constant":
            return self.value
        if self.dist == "uniform":
            return rng.uniform(self.min, self.max)
        return self.p50 * math.exp(self.sigma * rng.gauss(0.0, 1.0))

    def samples_s(self, rng: random.Random, count: int) -> tuple[float, ...]:
        """``count`` samples, in seconds."""
        if self.dist == "constant":
            return (self.value / 1000,) * count
        return tuple(self.sample(rng) / 1000 for _ in range(count))

    @classmethod
    def parse(cls, spec: str) -> Dist:
        """``300`` | ``constant:300`` | ``uniform:100,500`` | ``lognormal:300[,0.5]``."""
        kind, _, rest = spec.partition(":")
        if not rest:
            return cls(dist="constant", value=float(kind))
        numbers = [float(part) for part in rest.split(",")]
        if kind == "constant" and len(numbers) == 1:
            return cls(dist="constant", value=numbers[0])
        if kind == "uniform" and len(numbers) == 2:
            return cls(dist="uniform", min=numbers[0], max=numbers[1])
        if kind == "lognormal" and len(numbers) in (1, 2):
            sigma = numbers[1] if len(numbers) == 2 else 0.5
            return cls(dist="lognormal", p50=numbers[0], sigma=sigma)
        raise ValueError(f"not a distribution: {spec!r}")


class Faults(BaseModel):
    """Transport faults for testing clients; each ``*_rate`` is a probability per turn
    (``stream_error_rate``: per stream connection). At most one fault hits a turn, mid-way."""

    model_config = ConfigDict(extra="forbid")

    #: Cut every stream of the chat mid-turn without a close frame (the client sees 1006).
    drop_rate: float = Field(0.0, ge=0, le=1)
    #: Stop writing to the streams for ``stall_ms`` (real milliseconds, not scaled).
    stall_rate: float = Field(0.0, ge=0, le=1)
    stall_ms: int = Field(2000, ge=0)
    #: Send one text frame that is not valid JSON.
    malformed_rate: float = Field(0.0, ge=0, le=1)
    #: Close the streams with ``close_code``.
    close_rate: float = Field(0.0, ge=0, le=1)
    close_code: int = Field(1011, ge=1000, le=4999)
    #: On connect, fail the stream: an ``error`` envelope in era a, HTTP 500 before upgrade later.
    stream_error_rate: float = Field(0.0, ge=0, le=1)


class SimConfig(BaseModel):
    """Everything that can be tuned while the server runs (``PATCH /__sim/config``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    #: From a posted message to the chat daemon taking it up (``running``) and calling the
    #: LLM. Coder's daemons poll for pending chats every second; 0 answers at once.
    acquire_ms: Dist = Field(default_factory=lambda: Dist(dist="constant", value=0))
    #: Time to first output after ``running`` (the LLM's first token).
    ttft_ms: Dist = Field(default_factory=lambda: Dist(dist="lognormal", p50=300, sigma=0.5))
    #: Text ``message_part`` deltas per generation step.
    parts_per_turn: int = Field(20, ge=0)
    #: Gap between two parts.
    part_gap_ms: Dist = Field(default_factory=lambda: Dist(dist="constant", value=20))
    #: Characters of text in one delta.
    part_chars: int = Field(24, ge=1, le=65536)
    #: ``reasoning`` deltas before the text of the first step.
    reasoning_parts: int = Field(0, ge=0)
    #: Tool round trips per turn (tool-call part, assistant message, tool result, more text).
    tool_steps: int = Field(0, ge=0)
    #: ``usage.output_tokens`` of each assistant message; None estimates chars / 4.
    output_tokens: int | None = Field(None, ge=0)
    #: Multiplies the retry backoff actually slept (``delay_ms`` still says Coder's value).
    time_scale: float = Field(1.0, ge=0)
    #: Probability that a turn hits provider errors.
    error_rate: float = Field(0.0, ge=0, le=1)
    #: The ChatError kind of those errors; auth/config/... are not retried.
    error_kind: ErrorKind = ErrorKind.OVERLOADED
    #: Failed attempts before the provider recovers; >= 25 fails every attempt (final error).
    error_retries: int = Field(2, ge=0, le=MAX_ATTEMPTS)
    #: Coder's per-user API rate limit per minute (``--api-rate-limit``); -1 disables.
    rate_limit_per_minute: int = Field(512, ge=-1)
    #: Era a: seconds between ``{"type":"ping"}`` envelopes on a stream; 0 disables.
    json_ping_interval_s: float = Field(15.0, ge=0)
    faults: Faults = Field(default_factory=Faults)
    #: Seed of the generator's random choices; None draws one.
    seed: int | None = None
    #: A mock LLM's base URL (OpenAI Chat Completions); None generates text in-process.
    llm_url: str | None = None
    #: Whether ``GET /api/v2/experiments`` lists ``agents`` (eras a/b gate chats on it).
    agents_experiment: bool = True


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7396): objects merge, ``null`` resets a key to its default."""
    merged = dict(base)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def patched(config: SimConfig, patch: dict[str, Any]) -> SimConfig:
    """A new config with ``patch`` merged in; raises pydantic's ValidationError if invalid."""
    return SimConfig.model_validate(merge(config.model_dump(mode="json"), patch))


def load(path: Path | None, overrides: dict[str, Any]) -> SimConfig:
    """The config of a TOML file (if any) with flag overrides merged on top."""
    data: dict[str, Any] = {}
    if path is not None:
        with path.open("rb") as file:
            data = tomllib.load(file)
    return SimConfig.model_validate(merge(data, overrides))
