"""A turn's plain data, and the closed sets that name how it ends and where it failed.

Below both the tracker (which fills turns in) and the recorder (which measures them), so
neither needs the other's types; ``TurnRecorder`` is the seam between them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

#: How a turn ended: the server finished it (``completed``; ``interrupted`` at the user's
#: request; ``promoted``, ended by the next queued message), it ``failed``, or the run ended
#: first (``unfinished``).
Outcome = Literal["completed", "failed", "interrupted", "promoted", "unfinished"]

#: Where a failure happened, named as Coder's own scaletest names its stages, plus ours.
Stage = Literal[
    "create_chat",
    "create_message",
    "interrupt",
    "archive",
    "stream_open",
    "stream_event",
    "stream_closed",
    "status_error",
    "decode",
    "timeout",
    "integrity",
    "tool_results",
    "history",
]
STAGES: Final[tuple[str, ...]] = Stage.__args__  # type: ignore[attr-defined]


@dataclass(slots=True)
class ErrorInfo:
    """A failure, with its stage and, where the server gave one, its ChatError fields."""

    stage: Stage
    message: str
    kind: str | None = None
    provider: str | None = None
    retryable: bool | None = None
    status_code: int | None = None

    @classmethod
    def from_payload(cls, stage: Stage, payload: Any) -> ErrorInfo:
        """From any of the error forms: a bare string, ``{message}``, March or ChatError.

        The legacy forms carry no kind; they are recorded as kind ``generic``.
        """
        if isinstance(payload, dict):
            status = payload.get("status_code")
            retryable = payload.get("retryable")
            return cls(
                stage=stage,
                message=str(payload.get("message") or payload.get("detail") or ""),
                kind=str(payload.get("kind") or "generic"),
                provider=payload.get("provider")
                if isinstance(payload.get("provider"), str)
                else None,
                retryable=retryable if isinstance(retryable, bool) else None,
                status_code=status if isinstance(status, int) else None,
            )
        return cls(stage=stage, message="" if payload is None else str(payload), kind="generic")


@dataclass(slots=True)
class StepLog:
    """An agent turn's steps and tools (``core/steps.py`` fills it in; docs/metrics.md,
    "Agent steps, tools and sub-agents"). Times are ns."""

    #: Steps whose output was committed: assistant messages of the turn.
    steps: int = 0
    #: ``tool-call`` parts of its committed assistant messages, by tool name.
    tool_calls: dict[str, int] = field(default_factory=dict)
    #: ``tool-result`` parts of its committed tool messages with ``is_error``.
    tool_errors: int = 0
    #: Steps 2..n: the commit that ended the previous step -> this step's first live part.
    step_ttfts: list[int] = field(default_factory=list)
    #: (tool name, complete tool-call part -> its tool-result part), live parts only.
    tool_times: list[tuple[str, int]] = field(default_factory=list)
    #: What a timeline plot draws: (kind, label, start, end); kind ``wait`` (the step's start
    #: -> its first live part), ``stream`` (-> its commit) or ``tool`` (call -> result).
    timeline: list[tuple[str, str, int, int]] = field(default_factory=list)


@dataclass(slots=True)
class Turn:
    """One user message and everything the server did about it. Times are ns."""

    t0: int
    #: Open loop: when the schedule wanted the turn sent (coordinated omission).
    intended: int | None = None
    #: The target replica its driver talks to, when the run has several (an index).
    replica: int | None = None
    #: The chat's first turn (the one its create carried): scaletest's ``phase="initial"``.
    initial: bool = False
    queued: bool = False
    interrupted: bool = False
    #: True once the user message was seen, live or in a snapshot.
    user_seen: bool = False
    running_at: int | None = None
    first_output_at: int | None = None
    terminal_at: int | None = None
    #: False when the end was learnt from a snapshot: E2E is then unknown.
    terminal_live: bool = True
    status: str | None = None
    outcome: Outcome | None = None
    parts: int = 0
    last_part_frame_at: int | None = None
    #: Era D episodes: when the first live part since the last commit or preview_reset
    #: came; the first of a committed episode is the first kept output.
    episode_first_at: int | None = None
    first_kept_output_at: int | None = None
    #: Live parts thrown away by a preview_reset before any commit.
    parts_discarded: int = 0
    output_tokens: int = 0
    retries: int = 0
    #: Era D: when the turn first stopped for a tool only the client can run, and the call
    #: ids it waits on (the driver answers them and empties the list).
    action_required_at: int | None = None
    tool_calls: list[str] = field(default_factory=list)
    #: Stream integrity (docs/metrics.md): errors found in this turn's output, and
    #: whether any of it could be checked at all.
    integrity_errors: dict[str, int] = field(default_factory=dict)
    checked: bool = False
    error: ErrorInfo | None = field(default=None)
    #: Its steps, tools and their times (an agent's turn; one step for a plain answer).
    agent: StepLog = field(default_factory=StepLog)

    @property
    def origin(self) -> int:
        """Where the headline latencies start: the intended start when there is one."""
        return self.t0 if self.intended is None else self.intended


class TurnRecorder(Protocol):
    """The seam between the tracker and what measures its turns (``core.recorder.Recorder``
    in a run; anything with these methods in a test)."""

    def turn_started(self, turn: Turn) -> None: ...
    def turn_ended(self, turn: Turn) -> None: ...
    def part_frame(self, turn: Turn, parts: int, t: int) -> None: ...
    def orphan_parts(self, n: int) -> None: ...
    def snapshot_events(self, n: int) -> None: ...
    def queue_length(self, length: int) -> None: ...
    def queue_wait(self, ns: int) -> None: ...
    def retry_event(self, delay_ms: int | None, kind: str | None, t: int) -> None: ...
    def error_event(self) -> None: ...
    def error(self, info: ErrorInfo, t: int) -> None: ...
    def decode_error(self, reason: str, t: int) -> None: ...
    def preview_reset(self) -> None: ...
    def parts_discarded(self, n: int) -> None: ...
    def conversation(self, ns: int) -> None: ...
    def integrity(self, name: str, n: int) -> None: ...
    def message_update(self) -> None: ...
    def count(self, name: str, n: int = 1) -> None: ...


class PartFrames(Protocol):
    """What a frame of one part of a turn is tallied into, inline, by the meter's fast path
    (``TurnTracker.one_part``; ``core.recorder.Recorder`` in a run): the current second's
    bounds, its one-event frames by size and its gaps between a turn's part frames (µs)."""

    bucket_start: int
    bucket_end: int
    one_event_bytes: list[int]
    frame_gaps: list[int]

    def bucket(self, t: int) -> object:
        """Makes the second holding ``t`` the current one."""
        ...
