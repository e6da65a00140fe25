"""The mock's tuning: one pydantic model, loaded from TOML, overridden by flags, and patched
at runtime (``PATCH /__mock/config``) or per request (``X-Mock-LLM-Config``) with a JSON merge
patch (RFC 7396), so one process can serve many differently tuned test cases. Loading,
patching and the flags are ``loadtest/config.py``'s, as for the scenario and the simulator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from loadtest.config import Distribution
from loadtest.mockllm.coder_tools import EXECUTE
from loadtest.mockllm.faults import Fault

#: A fault's probability per reply; on the command line its metavar is P.
Probability = Annotated[float, Field(ge=0.0, le=1.0, json_schema_extra={"metavar": "P"})]
Seconds = Annotated[float, Field(ge=0.0)]


class MockSettings(BaseModel):
    """Everything tunable but the faults' probabilities (``MockConfig`` adds one field per
    ``Fault``). Field descriptions double as the CLI's ``--help``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttft: Distribution = Field(
        default_factory=lambda: Distribution(value=0.25),
        description="time to first token in seconds: S, constant:S, uniform:MIN,MAX or "
        "lognormal:MEDIAN[,SIGMA] (median*exp(sigma*Z))",
    )
    tokens_per_s: Seconds = Field(
        50.0, description="pace of the tokens after the first; 0 sends them as fast as possible"
    )
    output_tokens: int = Field(32, ge=1, description="tokens in a text reply, one SSE chunk each")
    tool_calls_per_turn: int = Field(
        0,
        ge=0,
        description="first step(s) of each user turn: while fewer than N tool results follow "
        "the last user message and the request offers --tool-name, reply with one call of it, "
        '{"command": --tool-call-command}, in one delta (Coder\'s llmmock, here in all three '
        "APIs); 0: text only. A prompt's control block may ask otherwise for its turn",
    )
    tool_name: str = Field(
        EXECUTE,
        min_length=1,
        description="the tool those steps call (Coder's llmmock: always execute); only if the "
        "request offers it",
    )
    tool_call_command: str = Field(
        "echo scaletest",
        min_length=1,
        description='the command in each call: arguments {"command": CMD}',
        json_schema_extra={"metavar": "CMD"},
    )
    subagents_per_turn: int = Field(
        0,
        ge=0,
        description="after the tool calls, S times: reply spawn_agent {type: general, prompt, "
        "title}, then on the request bringing its result wait_agent {chat_id} (chat_id read "
        "from that result); only if the request offers them (Coder offers them to root chats "
        "only). A turn then takes N + 2S + 1 LLM calls",
        json_schema_extra={"metavar": "S"},
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
        json_schema_extra={"metavar": "ID[,ID...]"},
        description="model ids listed by GET /v1/models (comma-separated on the command line)",
    )

    @model_validator(mode="after")
    def _faults_fit(self) -> MockSettings:
        total = sum(self.fault_probabilities().values())
        if total > 1.0 + 1e-9:
            raise ValueError(f"fault probabilities add up to {total:g}, more than 1")
        return self

    def fault_probabilities(self) -> dict[Fault, float]:
        return {fault: getattr(self, fault.field) for fault in Fault}


def _fault_fields() -> dict[str, Any]:
    """One probability field per fault, named and described by its declaration."""
    return {fault.field: (Probability, Field(0.0, description=fault.help)) for fault in Fault}


if TYPE_CHECKING:
    MockConfig = MockSettings  # the probabilities are read by name: ``fault_probabilities``
else:
    MockConfig = create_model(
        "MockConfig", __base__=MockSettings, __module__=__name__, **_fault_fields()
    )
    MockConfig.__doc__ = "Everything tunable. Field descriptions double as the CLI's ``--help``."
