"""The mock's faults, declared once: each member's config field, help, status and counter."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from loadtest.mockllm.config import MockConfig
from loadtest.mockllm.counts import LlmCounts
from loadtest.mockllm.faults import Fault, pick_fault


@pytest.mark.parametrize("fault", list(Fault), ids=str)
def test_each_fault_is_a_config_field_with_its_help_and_a_counter(fault: Fault) -> None:
    info = MockConfig.model_fields[fault.field]
    assert info.description == fault.help and info.default == 0.0
    assert LlmCounts().as_json()["faults"][fault.value] == 0
    config = MockConfig.model_validate({fault.field: 1.0})
    assert config.fault_probabilities()[fault] == 1.0


def test_status_faults_answer_before_a_body_and_the_others_break_a_reply() -> None:
    statuses = {fault.value: fault.status for fault in Fault}
    assert statuses == {
        "rate_limit": 429,
        "http_500": 500,
        "http_502": 502,
        "http_503": 503,
        "overloaded": 529,
        "silence": None,
        "cut": None,
    }


def test_pick_fault_walks_the_cumulative_probabilities() -> None:
    probabilities = {Fault.HTTP_500: 0.25, Fault.CUT: 0.5}
    assert pick_fault(probabilities, 0.0) is Fault.HTTP_500
    assert pick_fault(probabilities, 0.24) is Fault.HTTP_500
    assert pick_fault(probabilities, 0.25) is Fault.CUT
    assert pick_fault(probabilities, 0.74) is Fault.CUT
    assert pick_fault(probabilities, 0.75) is None
    assert pick_fault({}, 0.0) is None


def test_probabilities_over_one_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"add up to 1\.2"):
        MockConfig.model_validate({"fault_500": 0.6, "fault_cut": 0.6})
    with pytest.raises(ValidationError, match="fault_503"):
        MockConfig.model_validate({"fault_503": 1.5})
