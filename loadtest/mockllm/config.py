"""The mock's tuning: one pydantic model, loaded from TOML, overridden by flags, and patched
at runtime (``PATCH /__mock/config``) or per request (``X-Mock-LLM-Config``) with a JSON merge
patch (RFC 7386), so one process can serve many differently tuned test cases.
"""

from __future__ import annotations

import math
import random
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loadtest.mockllm.faults import PROBABILITY_FIELD, Fault

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Seconds = Annotated[float, Field(ge=0.0)]


class Ttft(BaseModel):
    """Time to first token, drawn per reply.

    ``constant``: ``s``; ``uniform``: between ``min_s`` and ``max_s``; ``lognormal``:
    ``median_s * exp(sigma * Z)`` with Z standard normal (a long right tail, like real
    providers). Anywhere a Ttft is expected, a shorthand string works too: ``"0.2"``,
    ``"constant:0.2"``, ``"uniform:0.1,0.5"``, ``"lognormal:0.3,0.6"`` (median, sigma).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    dist: Literal["constant", "uniform", "lognormal"] = "constant"
    s: Seconds = 0.25
    min_s: Seconds = 0.0
    max_s: Seconds = 1.0
    median_s: Seconds = 0.5
    sigma: Annotated[float, Field(ge=0.0)] = 0.5

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return {"dist": "constant", "s": value}
        if not isinstance(value, str):
            return value
        dist, _, params = value.partition(":") if ":" in value else ("constant", "", value)
        names = {
            "constant": ("s",),
            "uniform": ("min_s", "max_s"),
            "lognormal": ("median_s", "sigma"),
        }
        fields = names.get(dist.strip())
        numbers = [part.strip() for part in params.split(",")]
        if fields is None or len(numbers) != len(fields):
            raise ValueError(
                f"ttft {value!r}: want SECONDS, constant:S, uniform:MIN,MAX or lognormal:MEDIAN,SIGMA"
            )
        return {"dist": dist.strip(), **dict(zip(fields, numbers, strict=True))}

    @model_validator(mode="after")
    def _ordered(self) -> Ttft:
        if self.dist == "uniform" and self.min_s > self.max_s:
            raise ValueError("ttft: min_s must not exceed max_s")
        return self

    def sample(self, rng: random.Random) -> float:
        if self.dist == "uniform":
            return rng.uniform(self.min_s, self.max_s)
        if self.dist == "lognormal":
            return self.median_s * math.exp(self.sigma * rng.gauss(0.0, 1.0))
        return self.s

    def __str__(self) -> str:
        if self.dist == "uniform":
            return f"uniform:{self.min_s},{self.max_s}"
        if self.dist == "lognormal":
            return f"lognormal:{self.median_s},{self.sigma}"
        return f"constant:{self.s}"


class MockConfig(BaseModel):
    """Everything tunable. Field descriptions double as the CLI's ``--help``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttft: Ttft = Field(
        default_factory=Ttft,
        description="time to first token: SECONDS, constant:S, uniform:MIN,MAX or "
        "lognormal:MEDIAN,SIGMA (median*exp(sigma*Z))",
    )
    tokens_per_s: Seconds = Field(
        50.0, description="pace of the tokens after the first; 0 sends them as fast as possible"
    )
    output_tokens: int = Field(32, ge=1, description="tokens in a text reply, one SSE chunk each")
    tool_calls_per_turn: int = Field(
        0,
        ge=0,
        description="replies that call --tool-name before the text reply, per user turn (one "
        "call per reply, counted by the tool results after the last user message, as Coder's "
        "llmmock); a <coder-scaletest-control> block in the prompt overrides it",
    )
    tool_name: str = Field(
        "execute", min_length=1, description="tool to call; only if the request declares it"
    )
    tool_command: str = Field(
        "echo scaletest", min_length=1, description='the call\'s arguments: {"command": THIS}'
    )
    fault_rate_limit: Probability = Field(0.0, description="probability of a 429 with retry-after")
    fault_500: Probability = Field(0.0, description="probability of a 500")
    fault_502: Probability = Field(0.0, description="probability of a 502")
    fault_503: Probability = Field(0.0, description="probability of a 503")
    fault_overloaded: Probability = Field(
        0.0,
        description="probability of a 529 (Anthropic overloaded_error; 529 on OpenAI paths too)",
    )
    fault_silence: Probability = Field(
        0.0,
        description="probability that a reply starts, then sends nothing for --silence-s, "
        "then the connection closes",
    )
    fault_cut: Probability = Field(
        0.0, description="probability that the connection closes mid-reply"
    )
    retry_after_s: Seconds = Field(
        1.0, description="retry-after of a 429 (header in whole seconds, retry-after-ms exact)"
    )
    silence_s: Seconds = Field(30.0, description="how long a silent reply stays silent")
    seed: int | None = Field(
        None,
        description="seed for the fault, timing and text draws: with one, the k-th request "
        "after start or reset is replayable",
    )
    models: list[str] = Field(
        default_factory=lambda: ["scaletest-model"],
        min_length=1,
        description="model ids listed by GET /v1/models (comma-separated on the command line)",
    )

    @model_validator(mode="after")
    def _faults_fit(self) -> MockConfig:
        total = sum(self.fault_probabilities().values())
        if total > 1.0 + 1e-9:
            raise ValueError(f"fault probabilities add up to {total:g}, more than 1")
        return self

    def fault_probabilities(self) -> dict[Fault, float]:
        return {fault: getattr(self, name) for fault, name in PROBABILITY_FIELD.items()}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge key by key, ``null`` deletes, the rest replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def patched(config: MockConfig, patch: Any) -> MockConfig:
    """``config`` with a merge patch applied; a deleted key falls back to its default."""
    if not isinstance(patch, dict):
        raise ValueError("a config patch must be a JSON object")
    return MockConfig.model_validate(merge_patch(config.model_dump(), patch))


def load(path: Path | None, overrides: dict[str, Any]) -> MockConfig:
    """The config from a TOML file (top-level keys are the fields), then flag overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        with path.open("rb") as file:
            values = tomllib.load(file)
    return MockConfig.model_validate({**values, **overrides})
