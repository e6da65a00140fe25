"""One way to be configured: TOML + overrides + merge patches, errors that name the source and
the key, one distribution type, flags generated from the fields' descriptions."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from loadtest.config import (
    ConfigError,
    Distribution,
    add_flags,
    flag_overrides,
    load_model,
    patched,
)


class Inner(BaseModel):
    rate: float = Field(0.0, ge=0, le=1, description="a probability")


class Settings(BaseModel):
    model_config = {"extra": "forbid"}

    delay_ms: Distribution = Field(
        default_factory=lambda: Distribution(value=5),
        description="a delay",
        json_schema_extra={"flag": "--delay"},
    )
    count: int = Field(3, ge=1, description="how many")
    names: list[str] = Field(default_factory=lambda: ["a"], description="some names")
    inner: Inner = Field(default_factory=Inner)


def test_a_file_then_overrides_and_errors_name_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('count = 2\ndelay_ms = "uniform:1,3"\n[inner]\nrate = 0.5\n')
    settings = load_model(Settings, path, {"inner": {"rate": 0.25}})
    assert (settings.count, settings.inner.rate) == (2, 0.25)
    assert settings.delay_ms == Distribution(dist="uniform", min=1, max=3)
    path.write_text("[inner]\nrate = 7\n")
    with pytest.raises(ConfigError, match=r"s\.toml: inner\.rate: Input should be less"):
        load_model(Settings, path)
    with pytest.raises(ConfigError, match="no such config file"):
        load_model(Settings, tmp_path / "missing.toml")
    path.write_text("count = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_model(Settings, path)


def test_a_patch_merges_and_null_brings_the_default_back() -> None:
    base = Settings(count=4, inner=Inner(rate=0.5))
    changed = patched(base, {"inner": {"rate": None}, "delay_ms": "lognormal:10"})
    assert (changed.count, changed.inner.rate) == (4, 0.0)
    assert changed.delay_ms == Distribution(dist="lognormal", p50=10, sigma=0.5)
    with pytest.raises(ConfigError):
        patched(base, ["not", "an", "object"])


def test_flags_come_from_the_fields_and_nest_back() -> None:
    parser = argparse.ArgumentParser()
    add_flags(parser, Settings)
    helps = {flag: action.help for action in parser._actions for flag in action.option_strings}
    assert helps["--delay"] == "a delay (default: constant:5)"
    assert helps["--rate"] == "a probability (default: 0.0)"
    args = parser.parse_args(["--delay", "7", "--rate", "0.1", "--names", "x,y"])
    overrides = flag_overrides(args, split=lambda name: name == "names")
    assert overrides == {"delay_ms": "7", "inner": {"rate": "0.1"}, "names": ["x", "y"]}
    settings = load_model(Settings, None, overrides)
    assert (settings.delay_ms.value, settings.inner.rate, settings.names) == (7.0, 0.1, ["x", "y"])


def test_distribution_samples_and_spells_itself() -> None:
    import random

    rng = random.Random(3)
    assert Distribution.parse("constant:2").samples(rng, 3, scale=0.5) == (1.0, 1.0, 1.0)
    uniform = Distribution.parse("uniform:1,2")
    assert all(1 <= x <= 2 for x in uniform.samples(rng, 100))
    for spec in ("constant:2", "uniform:1,2", "lognormal:300,0.4"):
        assert str(Distribution.parse(spec)) == spec
    with pytest.raises(ValueError):
        Distribution.parse("uniform:3,1")
