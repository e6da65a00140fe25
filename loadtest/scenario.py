"""A load test's whole configuration: one pydantic model, from a TOML file, flags on top.

Unknown keys are errors (a typo must not silently run the default), and every error names
the key: ``load.users: Input should be greater than or equal to 0``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|h|m|s)?")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, None: 1.0}


class ScenarioError(ValueError):
    """A scenario that cannot run; the message names the file and the bad key."""


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"90s"``, ``"2m"``, ``"1h30m"`` or ``"250ms"``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip().lower()
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"{value!r} is not a duration (try 30, '30s', '2m' or '1h30m')")
    return total


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Load(Section):
    """How much load, and how it changes over time."""

    #: closed: ``users`` each wait on their own turns; open: turns start at ``arrival_rate``.
    mode: Literal["closed", "open"] = "closed"
    users: int = Field(5, ge=0)
    spawn_rate: float = Field(5.0, gt=0)
    #: Open loop: turns started per second across all workers, whatever the server does.
    arrival_rate: float | None = Field(None, gt=0)
    arrival: Literal["poisson", "constant"] = "poisson"
    run_time: float = 30.0
    stop_timeout: float = Field(30.0, ge=0)
    workers: int = Field(0, ge=0)
    #: steady | ramp (0 -> users over ramp_s) | step (+step_users every step_s) | spike.
    shape: Literal["steady", "ramp", "step", "spike"] = "steady"
    ramp_s: float = Field(10.0, gt=0)
    step_users: int = Field(1, ge=1)
    step_s: float = Field(10.0, gt=0)
    spike_users: int = Field(0, ge=0)
    spike_at_s: float = Field(10.0, ge=0)
    spike_s: float = Field(5.0, gt=0)

    @field_validator(
        "run_time", "stop_timeout", "ramp_s", "step_s", "spike_at_s", "spike_s", mode="before"
    )
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)

    @model_validator(mode="after")
    def _runnable(self) -> Load:
        if self.mode == "open" and self.arrival_rate is None:
            raise ValueError("mode 'open' needs arrival_rate (turns per second)")
        if self.run_time <= 0:
            raise ValueError("run_time must be longer than 0")
        if self.mode == "closed" and self.shape == "steady" and self.users < 1:
            raise ValueError("users must be at least 1 for a steady closed-loop run")
        return self


class Chat(Section):
    """What each simulated user does with a chat."""

    turns: int = Field(3, ge=1, description="turns per conversation, then the chat is archived")
    prompts: list[str] = Field(
        default_factory=lambda: [
            "Reply with one short sentence.",
            "Summarise what a load test measures.",
            "List three causes of tail latency.",
        ],
        min_length=1,
    )
    #: Seconds between a turn's end and the next turn: ``[min, max]``, uniform.
    think_time: tuple[float, float] = (0.5, 1.5)
    #: Share of turns interrupted after their first output.
    interrupt_ratio: float = Field(0.0, ge=0, le=1)
    #: Share of turns sent as an edit of the chat's last user message (full refresh).
    edit_ratio: float = Field(0.0, ge=0, le=1)
    #: Share of turns whose next message is posted while they still run (server queues it).
    queue_ratio: float = Field(0.0, ge=0, le=1)
    #: Extra read-only streams held on each driven chat (browser tabs watching it).
    watchers_per_chat: int = Field(0, ge=0)
    turn_timeout: float = Field(120.0, gt=0)
    #: Reconnects (with ``after_id``) allowed per turn after a dropped stream.
    max_reconnects: int = Field(3, ge=0)
    archive: bool = True

    @field_validator("think_time", mode="before")
    @classmethod
    def _think(cls, value: Any) -> tuple[float, float]:
        if isinstance(value, int | float | str):
            seconds = parse_duration(value)
            return seconds, seconds
        low, high = (parse_duration(v) for v in value)
        if high < low:
            raise ValueError("think_time is [min, max] with min <= max")
        return low, high

    @field_validator("turn_timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> float:
        return parse_duration(value)


class Target(Section):
    """The deployment under test; no host means the embedded simulator."""

    host: str | None = None
    era: Literal["auto", "a", "b", "c", "d"] = "auto"
    #: Send ``X-Coder-Bypass-Ratelimit: true`` (owners only) so 512 req/min does not cap us.
    bypass_ratelimit: bool = True


class Sim(Section):
    """The embedded simulator's settings when no host is given (see ``chatload sim --help``)."""

    era: Literal["a", "b", "d"] = "a"
    #: Merged into the simulator's configuration (same keys as its config file).
    config: dict[str, Any] = Field(default_factory=dict)


class Slo(Section):
    checks: list[str] = Field(default_factory=list)


class ReportOptions(Section):
    dir: str | None = None
    html: bool = True
    csv: bool = True


class Scenario(Section):
    name: str = "scenario"
    description: str = ""
    load: Load = Field(default_factory=Load)
    chat: Chat = Field(default_factory=Chat)
    target: Target = Field(default_factory=Target)
    sim: Sim = Field(default_factory=Sim)
    slo: Slo = Field(default_factory=Slo)
    report: ReportOptions = Field(default_factory=ReportOptions)


def _explain(source: str, exc: ValidationError) -> ScenarioError:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"{key}: {error['msg']}")
    return ScenarioError(f"{source}: " + "; ".join(lines))


def load_scenario(
    path: Path | None, overrides: dict[str, dict[str, Any]] | None = None
) -> Scenario:
    """The scenario in ``path`` (defaults when None) with flag ``overrides`` per section."""
    data: dict[str, Any] = {}
    source = str(path) if path else "defaults"
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ScenarioError(f"{path}: no such scenario file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
        except UnicodeDecodeError:
            raise ScenarioError(f"{path}: not a text file (TOML is UTF-8)") from None
        except OSError as exc:
            raise ScenarioError(f"{path}: cannot read the scenario file: {exc.strerror}") from None
        data.setdefault("name", path.stem)
    for section, values in (overrides or {}).items():
        if values:
            data.setdefault(section, {}).update(values)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise _explain(source, exc) from None
