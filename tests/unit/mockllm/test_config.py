"""The mock's tuning: the ttft shorthand, the faults' sum, and runtime merge patches."""

from __future__ import annotations

import random
from typing import Any

import pytest
from pydantic import ValidationError

from loadtest.config import Distribution, merge_patch, patched
from loadtest.mockllm.config import MockConfig
from loadtest.mockllm.faults import Fault


@pytest.mark.parametrize(
    ("spec", "dist", "fields"),
    [
        ("0.2", "constant", {"value": 0.2}),
        (0.3, "constant", {"value": 0.3}),
        ("constant:1", "constant", {"value": 1.0}),
        ("uniform:0.1, 0.5", "uniform", {"min": 0.1, "max": 0.5}),
        ("lognormal:0.3,0.6", "lognormal", {"p50": 0.3, "sigma": 0.6}),
        ("lognormal:0.3", "lognormal", {"p50": 0.3, "sigma": 0.5}),
    ],
)
def test_ttft_shorthand(spec: Any, dist: str, fields: dict[str, float]) -> None:
    ttft = Distribution.model_validate(spec)
    assert ttft.dist == dist
    assert {name: getattr(ttft, name) for name in fields} == fields
    assert Distribution.model_validate(str(ttft)) == ttft


@pytest.mark.parametrize("spec", ["gamma:1,2", "uniform:1", "uniform:0.5,0.1", "x", "-1"])
def test_ttft_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(ValidationError):
        MockConfig.model_validate({"ttft": spec})


def test_ttft_samples_stay_in_their_distribution() -> None:
    rng = random.Random(1)
    uniform = Distribution.model_validate("uniform:0.1,0.2")
    assert all(0.1 <= uniform.sample(rng) <= 0.2 for _ in range(200))
    lognormal = [Distribution.model_validate("lognormal:0.5,0.4").sample(rng) for _ in range(2001)]
    assert sorted(lognormal)[1000] == pytest.approx(0.5, rel=0.1)
    assert Distribution.model_validate("0.7").sample(rng) == 0.7


def test_merge_patch_follows_rfc_7386() -> None:
    target = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1]}
    patch = {"a": None, "b": {"c": 4}, "e": [2], "f": "x"}
    assert merge_patch(target, patch) == {"b": {"c": 4, "d": 3}, "e": [2], "f": "x"}
    assert merge_patch(target, "replaced") == "replaced"


def test_patched_config() -> None:
    base = MockConfig(output_tokens=5, fault_cut=0.5)
    changed = patched(base, {"fault_cut": None, "ttft": {"dist": "uniform", "max": 2}})
    assert (changed.output_tokens, changed.fault_cut) == (5, 0.0)
    assert (changed.ttft.dist, changed.ttft.max) == ("uniform", 2.0)
    with pytest.raises(ValidationError, match="tokens_per_minute"):
        patched(base, {"tokens_per_minute": 1})
    with pytest.raises(ValidationError, match=r"add up to 1\.1"):
        patched(base, {"fault_500": 0.6})
    with pytest.raises(ValueError, match="JSON object"):
        patched(base, [1])


def test_fault_probabilities_may_not_add_up_past_one() -> None:
    config = MockConfig.model_validate({Fault.CUT.field: 0.5, Fault.RATE_LIMIT.field: 0.5})
    assert sum(config.fault_probabilities().values()) == pytest.approx(1.0)
    with pytest.raises(ValidationError, match=r"add up to 1\.5, more than 1"):
        MockConfig.model_validate({Fault.CUT.field: 0.9, Fault.RATE_LIMIT.field: 0.6})


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"output_token": 3}, "output_token"),
        ({"output_tokens": 0}, "output_tokens"),
        ({"models": []}, "models"),
        ({"tool_name": ""}, "tool_name"),
        ({"retry_after_s": -1}, "retry_after_s"),
    ],
)
def test_bad_settings_name_their_key(values: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        MockConfig.model_validate(values)


def test_defaults_serve_text_at_a_steady_pace() -> None:
    config = MockConfig()
    assert (config.output_tokens, config.tool_calls_per_turn, config.models) == (
        32,
        0,
        ["scaletest-model"],
    )
    assert set(config.fault_probabilities().values()) == {0.0}
