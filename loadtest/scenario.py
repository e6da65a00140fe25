"""A load test's whole configuration: one pydantic model, from a TOML file, flags on top.

Unknown keys are errors (a typo must not silently run the default), and every error names
the key: ``load.users: Input should be greater than or equal to 0``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from loadtest.config import (
    ConfigError,
    Distribution,
    explain,
    merge_patch,
    parse_duration,
    read_toml,
)
from loadtest.core.profiles import (
    DURATION_KEYS,
    PROFILE_KEYS,
    AnyProfile,
    ClosedProfile,
    Open,
    Steady,
    chosen,
)
from loadtest.mockllm.control import render


class ScenarioError(ConfigError):
    """A scenario that cannot run; the message names the file and the bad key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LoadSection(Section):
    """How much load, and how it changes over time.

    The scenario file keeps its flat keys (``users``, ``ramp_s``, ``arrival_rate`` ...); they
    become the typed profile that ``mode`` and ``shape`` choose (``core.profiles``), and a key
    of another profile is an error that names it.
    """

    #: closed: ``users`` each wait on their own turns; open: turns start at ``arrival_rate``.
    mode: Literal["closed", "open"] = "closed"
    #: steady | ramp (0 -> users over ramp_s) | step (+step_users every step_s) | spike |
    #: storm (Coder's ``scaletest chat``: every chat at once, turn_start_delay).
    shape: Literal["steady", "ramp", "step", "spike", "storm"] = "steady"
    spawn_rate: float = Field(5.0, gt=0)
    run_time: float = 30.0
    stop_timeout: float = Field(30.0, ge=0)
    workers: int = Field(0, ge=0)
    profile: AnyProfile = Field(default_factory=Steady)

    @model_validator(mode="before")
    @classmethod
    def _profile(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "profile" in data:
            return data
        data = dict(data)
        own = {key: data.pop(key) for key in list(data) if key in PROFILE_KEYS}
        profile = chosen(str(data.get("mode", "closed")), str(data.get("shape", "steady")))
        if profile is None:
            return data  # the shape's own check names it
        wrong = sorted(set(own) - profile.KEYS)
        if wrong:
            name = "open loop" if profile is Open else f"the {data.get('shape', 'steady')} shape"
            raise ValueError(
                f"{', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} not a setting of "
                f"{name} (its keys: {', '.join(sorted(profile.KEYS))})"
            )
        if profile is Open and "arrival_rate" not in own:
            raise ValueError("mode 'open' needs arrival_rate (turns per second)")
        for key in DURATION_KEYS & own.keys():
            own[key] = parse_duration(own[key])
        data["profile"] = {"kind": profile.model_fields["kind"].default, **own}
        return data

    @field_validator("run_time", "stop_timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)

    @model_validator(mode="after")
    def _runnable(self) -> LoadSection:
        if self.run_time <= 0:
            raise ValueError("run_time must be longer than 0")
        return self

    @property
    def users(self) -> int | None:
        """Closed loop: the profile's users (its peak without the spike); open: None."""
        return self.profile.users if isinstance(self.profile, ClosedProfile) else None

    @property
    def arrival_rate(self) -> float | None:
        return self.profile.arrival_rate if isinstance(self.profile, Open) else None


class ChatSection(Section):
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
    #: Seconds between a turn's end and the next turn: ``[min, max]`` (uniform), one
    #: duration (constant), or any distribution spec (``"lognormal:1,0.5"``).
    think_time: Distribution = Field(
        default_factory=lambda: Distribution(dist="uniform", min=0.5, max=1.5)
    )
    #: Share of turns interrupted after their first output.
    interrupt_ratio: float = Field(0.0, ge=0, le=1)
    #: Share of turns sent as an edit of the chat's last user message (full refresh).
    edit_ratio: float = Field(0.0, ge=0, le=1)
    #: Share of turns whose next message is posted while they still run (server queues it).
    queue_ratio: float = Field(0.0, ge=0, le=1)
    #: Watchers: extra read-only streams held on each driven chat (another window on it).
    watchers_per_chat: int = Field(0, ge=0)
    #: With several replicas (``--host`` more than once), where watchers and watch sockets
    #: connect: ``other`` than the replica of their chat's driver (what crosses replicas:
    #: Coder's pubsub and relay), the ``same`` one, or ``any`` (round-robin).
    watcher_placement: Literal["other", "same", "any"] = "other"
    #: ``/chats/watch`` sockets each user holds for the whole run: the chat list of an open
    #: Coder tab, one per tab (status, title and action-required changes of their chats).
    watch_sockets_per_user: int = Field(0, ge=0, le=16)
    #: Open each sub-agent's own stream when its chat spawns one, as a user clicking "View
    #: agent" (protocol §10.3): its time to first output and duration are then measured.
    follow_subagents: bool = False
    #: Era D ``requires_action``: how long the user's own (client) tool runs before it posts
    #: the results (``[min, max]``, one duration, or a distribution spec, as ``think_time``).
    #: Not the figure ``tool_time`` (a tool the agent ran in the workspace); the key's old
    #: name ``tool_time`` is still read.
    client_tool_time: Distribution = Field(
        default_factory=lambda: Distribution(value=0.2),
        validation_alias=AliasChoices("client_tool_time", "tool_time"),
    )
    #: Tool calls each turn asks for, written into the prompt's control block (protocol
    #: §10.2; ``chatload mock-llm`` and ``chatload sim`` read it): one number, ``[min, max]``,
    #: or a distribution spec, rounded per turn. None: the server's own setting.
    tool_calls_per_turn: Distribution | None = None
    #: Sub-agents each turn spawns (``spawn_agent`` then ``wait_agent``), written likewise.
    subagents_per_turn: Distribution | None = None
    turn_timeout: float = Field(120.0, gt=0)
    #: Reconnects (with ``after_id``) allowed per turn after a dropped stream.
    max_reconnects: int = Field(3, ge=0)
    archive: bool = True

    def prompt(self, rng: random.Random) -> str:
        """A prompt for the next turn, headed by the control block of its shape when
        ``tool_calls_per_turn`` or ``subagents_per_turn`` is set."""
        text = rng.choice(self.prompts)
        keys = {}
        if self.tool_calls_per_turn is not None:
            keys["tool_calls_this_turn"] = max(0, round(self.tool_calls_per_turn.sample(rng)))
        if self.subagents_per_turn is not None:
            keys["subagents_this_turn"] = max(0, round(self.subagents_per_turn.sample(rng)))
        return f"{render(**keys)}\n{text}" if keys else text

    @field_validator(
        "think_time", "client_tool_time", "tool_calls_per_turn", "subagents_per_turn", mode="before"
    )
    @classmethod
    def _think(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            low, high = (parse_duration(v) for v in value)
            if high < low:
                raise ValueError("a time range is [min, max] with min <= max")
            return {"dist": "uniform", "min": low, "max": high}
        if isinstance(value, str) and ":" not in value:
            return parse_duration(value)  # "2s": a constant
        return value

    @field_validator("turn_timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> float:
        return parse_duration(value)


class TargetSection(Section):
    """The deployment under test; no host means the embedded simulator."""

    host: str | None = None
    era: Literal["auto", "a", "b", "c", "d"] = "auto"
    #: Send ``X-Coder-Bypass-Ratelimit: true`` (owners only) so 512 req/min does not cap us.
    bypass_ratelimit: bool = True
    #: A workspace name prefix (Coder's scaletest uses ``scaletest-``): each chat is created
    #: in one of the matching workspaces with a connected agent, round robin. None: chats
    #: have no workspace, and an agent's tools fail.
    workspaces: str | None = Field(None, min_length=1)
    #: At most this many users' chats on one workspace at once (Coder's scaletest
    #: ``--chats-per-workspace``): more users than workspaces x this is refused.
    chats_per_workspace: int | None = Field(None, ge=1)


class SimSection(Section):
    """The embedded simulator's settings when no host is given (see ``chatload sim --help``)."""

    #: Era D is what Coder v2.38+ speaks today (protocol section 8): the default.
    era: Literal["a", "b", "c", "d"] = "d"
    #: Merged into the simulator's configuration (same keys as its config file).
    config: dict[str, Any] = Field(default_factory=dict)
    #: The accounts simulated users log in as: ``per_user`` (each its own, as the people
    #: behind browsers are), ``shared`` (one team account: every watch socket then hears of
    #: every user's chats, users x users watch events), or a number to spread them over.
    accounts: Literal["per_user", "shared"] | Annotated[int, Field(ge=1)] = "per_user"

    def account_count(self, users: int) -> int:
        """How many accounts ``users`` simulated users are spread over."""
        if self.accounts == "per_user":
            return max(1, users)
        if self.accounts == "shared":
            return 1
        return min(self.accounts, max(1, users))


class SloSection(Section):
    checks: list[str] = Field(default_factory=list)


class ReportOptions(Section):
    dir: str | None = None
    html: bool = True
    csv: bool = True


class Scenario(Section):
    name: str = "scenario"
    description: str = ""
    load: LoadSection = Field(default_factory=LoadSection)
    chat: ChatSection = Field(default_factory=ChatSection)
    target: TargetSection = Field(default_factory=TargetSection)
    sim: SimSection = Field(default_factory=SimSection)
    slo: SloSection = Field(default_factory=SloSection)
    report: ReportOptions = Field(default_factory=ReportOptions)


def _file_key(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """The file's own key: ``load.profile.ramp.users`` is ``load.users``."""
    return (*loc[:1], *loc[3:]) if loc[1:2] == ("profile",) else loc


def load_scenario(
    path: Path | None, overrides: dict[str, dict[str, Any]] | None = None
) -> Scenario:
    """The scenario in ``path`` (defaults when None) with flag ``overrides`` per section."""
    data: dict[str, Any] = {}
    source = str(path) if path else "defaults"
    if path is not None:
        try:
            data = read_toml(path, what="scenario file")
        except ConfigError as exc:
            raise ScenarioError(str(exc)) from None
        data.setdefault("name", path.stem)
    load, switched = data.get("load") or {}, (overrides or {}).get("load") or {}
    was, shape_was = str(load.get("mode", "closed")), str(load.get("shape", "steady"))
    mode, shape = str(switched.get("mode", was)), str(switched.get("shape", shape_was))
    if mode != was or shape != shape_was:
        # A flag that switches the loop (-u, --arrival-rate) or the shape (--shape) drops the
        # file's settings of the other loop or shape: they are not the flag's mistake.
        profile = chosen(mode, shape)
        dropped = PROFILE_KEYS - (profile.KEYS if profile else frozenset())
        data["load"] = {k: v for k, v in load.items() if k not in dropped}
        if mode == "open":
            data["load"].pop("shape", None)
    data = merge_patch(data, overrides or {})
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(str(explain(source, exc, _file_key))) from None
