"""One way to be configured: a pydantic model from TOML, flags and JSON merge patches.

The scenario (``chatload run``), the simulator and the mock LLM all load their settings here:
a TOML file, then overrides merged on top (RFC 7396 JSON merge patch: objects merge, ``null``
restores a default); every error names the file and the key. Durations and distributions
have one type each, and a model's command-line flags are generated from its fields'
descriptions, so ``--help`` is written once, beside the field.
"""

from __future__ import annotations

import argparse
import math
import random
import re
import tomllib
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """Settings that cannot be used; the message names the source and the key."""


# ---------------------------------------------------------------- durations

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|h|m|s)?")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, None: 1.0}


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


# ---------------------------------------------------------------- distributions


class Distribution(BaseModel):
    """A random quantity, in the unit its field names (``ttft_ms``: ms; ``ttft``: s).

    ``constant`` (``value``), ``uniform`` (``min``..``max``) or ``lognormal`` (median ``p50``,
    log-space spread ``sigma``: ``p50 * exp(sigma * Z)``, a long right tail like real
    providers'). Wherever one is expected a shorthand works too: ``300``, ``"constant:300"``,
    ``"uniform:100,500"``, ``"lognormal:300"`` or ``"lognormal:300,0.5"``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    dist: Literal["constant", "uniform", "lognormal"] = "constant"
    value: float = Field(0.0, ge=0)
    min: float = Field(0.0, ge=0)
    max: float = Field(0.0, ge=0)
    p50: float = Field(0.0, ge=0)
    sigma: float = Field(0.5, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return {"dist": "constant", "value": value}
        if not isinstance(value, str):
            return value
        kind, _, rest = value.partition(":")
        if not rest:
            kind, rest = "constant", kind
        try:
            numbers = [float(part) for part in rest.split(",")]
        except ValueError:
            numbers = []
        kind = kind.strip()
        if kind == "constant" and len(numbers) == 1:
            return {"dist": "constant", "value": numbers[0]}
        if kind == "uniform" and len(numbers) == 2:
            return {"dist": "uniform", "min": numbers[0], "max": numbers[1]}
        if kind == "lognormal" and len(numbers) in (1, 2):
            return {"dist": "lognormal", "p50": numbers[0], "sigma": [*numbers, 0.5][1]}
        raise ValueError(
            f"{value!r} is not a distribution: want N, constant:N, uniform:MIN,MAX or "
            "lognormal:P50[,SIGMA]"
        )

    @model_validator(mode="after")
    def _ordered(self) -> Distribution:
        if self.dist == "uniform" and self.max < self.min:
            raise ValueError("uniform needs min <= max")
        return self

    @classmethod
    def parse(cls, spec: str) -> Distribution:
        return cls.model_validate(spec)

    def sample(self, rng: random.Random) -> float:
        if self.dist == "constant":
            return self.value
        if self.dist == "uniform":
            return rng.uniform(self.min, self.max)
        return self.p50 * math.exp(self.sigma * rng.gauss(0.0, 1.0))

    def samples(self, rng: random.Random, count: int, scale: float = 1.0) -> tuple[float, ...]:
        """``count`` samples, each multiplied by ``scale`` (0.001: ms fields in seconds)."""
        if self.dist == "constant":
            return (self.value * scale,) * count
        return tuple(self.sample(rng) * scale for _ in range(count))

    def __str__(self) -> str:
        if self.dist == "constant":
            return f"constant:{self.value:g}"
        if self.dist == "uniform":
            return f"uniform:{self.min:g},{self.max:g}"
        return f"lognormal:{self.p50:g},{self.sigma:g}"


# ---------------------------------------------------------------- loading


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge key by key, ``null`` deletes (so the model's
    default comes back), anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def explain(
    source: str,
    exc: ValidationError,
    key_of: Callable[[tuple[int | str, ...]], tuple[int | str, ...]] = lambda loc: loc,
) -> ConfigError:
    """``source: key.path: message; ...`` from pydantic's errors (``key_of`` maps a model's
    location to the key as the user wrote it)."""
    lines = []
    for error in exc.errors(include_url=False):
        key = ".".join(str(part) for part in key_of(tuple(error["loc"]))) or "(top level)"
        lines.append(f"{key}: {error['msg']}")
    return ConfigError(f"{source}: " + "; ".join(lines))


def read_toml(path: Path, what: str = "config file") -> dict[str, Any]:
    """A TOML file's table; every failure a ``ConfigError`` naming the file."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (TOML is UTF-8)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror}") from None


def load_model(model: type[M], path: Path | None, overrides: dict[str, Any] | None = None) -> M:
    """``model`` from a TOML file (if any) with ``overrides`` merged on top."""
    data = read_toml(path) if path is not None else {}
    return validate(model, merge_patch(data, overrides or {}), str(path) if path else "settings")


def validate(model: type[M], data: Any, source: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise explain(source, exc) from None


def patched(config: M, patch: Any) -> M:
    """``config`` with a merge patch applied (a runtime ``PATCH``): a deleted key falls back
    to its default. Raises pydantic's ``ValidationError`` (servers answer its errors field
    by field) or ``ConfigError`` when the patch is no object."""
    if not isinstance(patch, dict):
        raise ConfigError("a config patch must be a JSON object")
    return type(config).model_validate(merge_patch(config.model_dump(mode="json"), patch))


# ---------------------------------------------------------------- flags


def flag_of(name: str, info: Any) -> str:
    """A field's flag: its ``flag`` extra, else ``--`` and its name with dashes."""
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    return str(extra.get("flag") or "--" + name.replace("_", "-"))


def add_flags(group: Any, model: type[BaseModel], prefix: str = "") -> None:
    """One flag per field (``--part-chars``, or the field's ``flag``), its help the field's
    description; nested models (``faults``) add their fields' flags. Values stay strings:
    the model parses them, so a flag and a file key are checked alike."""
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if "flag" in extra and extra["flag"] is None:
            continue  # no flag of its own (the command has a better-named one)
        nested = info.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel) and not _is_leaf(nested):
            add_flags(group, nested, prefix=f"{prefix}{name}.")
            continue
        default = info.get_default(call_default_factory=True)
        shown = "none" if default is None else str(default)
        if isinstance(default, list):
            shown = ",".join(map(str, default))
        help_text = (info.description or "").replace("%", "%%")
        group.add_argument(
            flag_of(name, info),
            dest=f"set:{prefix}{name}",
            metavar=str(extra.get("metavar") or _metavar(default, info.annotation)),
            default=None,
            help=f"{help_text} (default: {shown})",
        )


def _is_leaf(model: type[BaseModel]) -> bool:
    """A model given as one value on the command line (a distribution)."""
    return model is Distribution


def _metavar(default: Any, annotation: Any) -> str:
    if default is None:  # an optional field: its type says what to write
        kinds = set(typing.get_args(annotation))
        return "N" if int in kinds else "X" if float in kinds else "TEXT"
    if isinstance(default, Distribution):
        return "SPEC"
    if isinstance(default, list):
        return "A[,B...]"
    if isinstance(default, bool):
        return "BOOL"
    if isinstance(default, int):
        return "N"
    if isinstance(default, float):
        return "X"
    return "TEXT"


def flag_overrides(
    args: argparse.Namespace, split: Callable[[str], bool] = lambda _: False
) -> dict[str, Any]:
    """The flags ``add_flags`` made that were given, as a nested dict of overrides; fields
    for which ``split(name)`` is true take comma-separated lists."""
    overrides: dict[str, Any] = {}
    for dest, value in vars(args).items():
        if not dest.startswith("set:") or value is None:
            continue
        *sections, name = dest[4:].split(".")
        target = overrides
        for section in sections:
            target = target.setdefault(section, {})
        target[name] = value.split(",") if split(name) else value
    return overrides
