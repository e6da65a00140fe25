"""The faults the mock injects: names, the config knob for each, and the HTTP status of each."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Fault(StrEnum):
    """A fault kind; the value is its key in ``/__mock/counts``."""

    RATE_LIMIT = "rate_limit"
    HTTP_500 = "http_500"
    HTTP_502 = "http_502"
    HTTP_503 = "http_503"
    OVERLOADED = "overloaded"
    SILENCE = "silence"
    CUT = "cut"


#: The config field holding each fault's probability.
PROBABILITY_FIELD: Final = {
    Fault.RATE_LIMIT: "fault_rate_limit",
    Fault.HTTP_500: "fault_500",
    Fault.HTTP_502: "fault_502",
    Fault.HTTP_503: "fault_503",
    Fault.OVERLOADED: "fault_overloaded",
    Fault.SILENCE: "fault_silence",
    Fault.CUT: "fault_cut",
}

#: Faults answered with an error status before any body; the others break a started reply.
HTTP_STATUS: Final = {
    Fault.RATE_LIMIT: 429,
    Fault.HTTP_500: 500,
    Fault.HTTP_502: 502,
    Fault.HTTP_503: 503,
    # Anthropic's "overloaded_error"; served on the OpenAI paths too, where Coder retries it.
    Fault.OVERLOADED: 529,
}


def pick_fault(probabilities: dict[Fault, float], u: float) -> Fault | None:
    """The fault a uniform draw ``u`` in [0, 1) lands on, walking the cumulative probabilities."""
    edge = 0.0
    for fault in Fault:
        edge += probabilities.get(fault, 0.0)
        if u < edge:
            return fault
    return None
