"""From chats and their messages to a trace: turns cut at each user message, ids hashed. Pure.

Both exports (Coder's PostgreSQL, the API) read the same facts, a ``SourceChat`` with its
``Message`` rows in id order, and build the trace here, so they cannot disagree on what a
turn is. A message's text is never handed over: only its length and its tool calls' names.

A turn is a visible user message and every assistant and tool message after it until the
next one: ``steps`` counts its assistant messages (each LLM call that committed output;
``docs/metrics.md`` ``steps_per_turn``), ``tools`` its ``tool-call`` parts by name,
``subagents`` those named ``spawn_agent``, ``duration_s`` runs from the user message to the
turn's last message and ``think_s`` from the previous turn's last message (or the chat's
creation) to the user message.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from loadtest.protocol.agents import SPAWN_AGENT
from loadtest.trace.model import (
    SCHEMA_VERSION,
    ChatLine,
    TraceHeader,
    TraceLines,
    TraceTurn,
    turns_json,
)

#: Roles that answer a turn (Coder's ``chat_message_role``: system, user, assistant, tool;
#: coderd/database/dump.sql).
ANSWER_ROLES = frozenset({"assistant", "tool"})
#: Bytes of a chat's opaque hash (hex doubles it): 2^64 makes a collision in a trace of
#: millions of chats about one in a million.
HASH_BYTES = 8


class ExportError(Exception):
    """An export that could not be made; ``unreachable`` when the source could not be used
    (exit 3), else the request was wrong (exit 2). No secret is in the message."""

    def __init__(self, message: str, unreachable: bool = True) -> None:
        super().__init__(message)
        self.unreachable = unreachable


@dataclass(frozen=True, slots=True)
class Message:
    """One committed message, as much of it as a trace may know."""

    #: When it was committed, in seconds since the epoch.
    at: float
    role: str
    #: Shown to the user (Coder's visibility ``user`` or ``both``); a hidden user message is
    #: context the system added, not a turn.
    visible: bool = True
    #: Characters of its text parts.
    text_chars: int = 0
    #: The ``tool_name`` of each of its ``tool-call`` parts, in order.
    tools: tuple[str, ...] = ()
    output_tokens: int | None = None


@dataclass(slots=True)
class SourceChat:
    """A chat as an export read it: Coder's ids (hashed before anything is written)."""

    id: str
    #: Creation time, seconds since the epoch.
    created: float
    parent: str | None = None
    workspace: str | None = None
    messages: list[Message] = field(default_factory=list)


@dataclass(slots=True)
class _Turn:
    posted: float
    think_s: float
    prompt_chars: int
    last: float | None = None
    steps: int = 0
    tools: Counter[str] = field(default_factory=Counter)
    output_tokens: int | None = None

    def answer(self, message: Message) -> None:
        self.last = message.at
        if message.role != "assistant":
            return
        self.steps += 1
        self.tools.update(message.tools)
        if message.output_tokens is not None:
            self.output_tokens = (self.output_tokens or 0) + message.output_tokens

    def end(self) -> float:
        return self.posted if self.last is None else max(self.last, self.posted)

    def done(self) -> TraceTurn:
        return TraceTurn(
            think_s=_ms(self.think_s),
            prompt_chars=self.prompt_chars,
            steps=self.steps,
            tools=dict(sorted(self.tools.items())),
            subagents=self.tools.get(SPAWN_AGENT, 0),
            output_tokens=self.output_tokens,
            duration_s=None if self.last is None else _ms(max(0.0, self.last - self.posted)),
        )


def _ms(seconds: float) -> float:
    """Seconds to the millisecond: the precision a trace keeps."""
    return round(seconds, 3)


def turns_of(chat: SourceChat) -> list[TraceTurn]:
    """The chat's turns from its messages (in id order, as Coder appends them)."""
    turns: list[TraceTurn] = []
    previous_end = chat.created
    current: _Turn | None = None
    for message in chat.messages:
        if message.role == "user" and message.visible:
            if current is not None:
                turns.append(current.done())
                previous_end = current.end()
            current = _Turn(
                posted=message.at,
                # A message promoted from the queue is committed as the previous turn ends:
                # no time to think; clocks of two writers never make it negative.
                think_s=max(0.0, message.at - previous_end),
                prompt_chars=message.text_chars,
            )
        elif message.role in ANSWER_ROLES and current is not None:
            current.answer(message)
    if current is not None:
        turns.append(current.done())
    return turns


def opaque(salt: bytes, ident: str) -> str:
    """A chat's name in a trace: a keyed hash of its id, so the same id gets the same name
    within one export (and across exports with the same salt) but cannot be turned back."""
    return hashlib.blake2b(ident.encode(), key=salt[:64], digest_size=HASH_BYTES).hexdigest()


@dataclass(slots=True)
class Built:
    trace: TraceLines
    #: Chats left out because they had no user message (nothing to replay).
    without_turns: int = 0
    #: Sub-agent chats left out because their parent is not in the trace.
    orphans: int = 0


def build_trace(
    chats: Iterable[SourceChat],
    *,
    source: str,
    salt: bytes,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Built:
    """The trace of ``chats``: roots (user chats) and the sub-agents under them, each chat at
    its offset from ``since`` (default: the first chat's start)."""
    # One chat at a time: once its turns are cut only their JSON is kept, so an export of
    # millions of messages holds compact turns, never the messages.
    read = [(replace(chat, messages=[]), _compact(turns_of(chat))) for chat in chats]
    roots = {chat.id for chat, turns in read if chat.parent is None and turns}
    without_turns = sum(1 for _, turns in read if not turns)
    orphans = sum(
        1 for chat, turns in read if turns and chat.parent is not None and chat.parent not in roots
    )
    kept = [(c, t) for c, t in read if t and (c.parent is None or c.parent in roots)]
    origin = since.timestamp() if since else min((c.created for c, _ in kept), default=0.0)
    if since is None and not kept and until is not None:
        origin = until.timestamp()
    # Children sort after a parent started in the same millisecond.
    kept.sort(key=lambda pair: (pair[0].created, pair[0].parent is not None, pair[0].id))
    slots: dict[str, int] = {}
    lines = []
    for chat, compact in kept:
        assert compact is not None
        workspace = None
        if chat.workspace is not None:
            workspace = slots.setdefault(chat.workspace, len(slots))
        lines.append(
            ChatLine(
                chat=opaque(salt, chat.id),
                start_s=_ms(max(0.0, chat.created - origin)),
                parent=None if chat.parent is None else opaque(salt, chat.parent),
                workspace=workspace,
                turns=compact[0],
                turn_count=compact[1],
            )
        )
    window = until.timestamp() - origin if until is not None else 0.0
    last = max((line.start_s for line in lines), default=0.0)
    header = TraceHeader(
        schema_version=SCHEMA_VERSION,
        source=source,
        started_at=datetime.fromtimestamp(origin, UTC),
        duration_s=_ms(max(window, last)),
        chats=len(lines),
    )
    return Built(TraceLines(header, lines), without_turns, orphans)


def _compact(turns: list[TraceTurn]) -> tuple[str, int] | None:
    """The turns as JSON and their number; None for none."""
    return (turns_json(turns), len(turns)) if turns else None
