"""The faults the mock injects, each declared once: its counter, config key (and flag), help
text and the HTTP status it answers with."""

from __future__ import annotations

from enum import StrEnum


class Fault(StrEnum):
    """A fault kind. Each member is one declaration: its value is its key under ``faults`` in
    ``/__mock/counts``; ``field`` its probability's config key (its flag: ``--`` and the key
    with dashes); ``help`` its ``--help``; ``status`` the HTTP status it answers with before
    any body (None: it breaks a started reply instead). ``MockConfig``'s fault fields and the
    counts are derived from these members: a new fault is a member plus its behaviour."""

    field: str
    help: str
    status: int | None

    def __new__(cls, key: str, field: str, status: int | None, help: str) -> Fault:
        member = str.__new__(cls, key)
        member._value_ = key
        member.field = field
        member.status = status
        member.help = help
        return member

    RATE_LIMIT = ("rate_limit", "fault_rate_limit", 429, "probability of a 429 with retry-after")
    HTTP_500 = ("http_500", "fault_500", 500, "probability of a 500")
    HTTP_502 = ("http_502", "fault_502", 502, "probability of a 502")
    HTTP_503 = ("http_503", "fault_503", 503, "probability of a 503")
    # Anthropic's "overloaded_error"; served on the OpenAI paths too, where Coder retries it.
    OVERLOADED = (
        "overloaded",
        "fault_overloaded",
        529,
        "probability of a 529 (Anthropic overloaded_error; 529 on OpenAI paths too)",
    )
    SILENCE = (
        "silence",
        "fault_silence",
        None,
        "probability that a reply starts, then sends nothing for --silence-s, then the "
        "connection closes",
    )
    CUT = ("cut", "fault_cut", None, "probability that the connection closes mid-reply")


def pick_fault(probabilities: dict[Fault, float], u: float) -> Fault | None:
    """The fault a uniform draw ``u`` in [0, 1) lands on, walking the cumulative probabilities."""
    edge = 0.0
    for fault in Fault:
        edge += probabilities.get(fault, 0.0)
        if u < edge:
            return fault
    return None
