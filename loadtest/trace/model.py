"""The trace format as data: a header, then one chat a line, and the checks across lines.

What happened, without what was said (``docs/report-contract.md`` § Traces): per chat its
start, parent and workspace slot, per turn the think time before it, the prompt's size and
the shape of the answer. No text, no titles, no names, no ids as Coder knows them: a chat is
an opaque hash, a workspace a small slot number. Pure: no I/O (``files.py`` reads and writes).

A replay (``chatload run --trace``) reads exactly this: ``Trace.chats`` (exports and synth
write them in start order; one edited by hand may not be, so a replay sorts by ``start_s``),
each ``TraceChat`` with its ``start_s`` offset, ``parent`` (another chat's ``chat``: a
sub-agent starts under it), ``workspace`` slot (chats sharing a slot share a workspace) and
``turns``. Read, a turn costs ~1.3 KB as a model: a day of traffic is fine, a year is not
(replay a ``--window`` of it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, NonNegativeInt

#: The format version this chatload reads and writes.
SCHEMA_VERSION: Final = 1


class _Line(BaseModel):
    # Strict: "3" is not a number and 2.0 not a count; a typo'd key is an error, not ignored.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class TraceHeader(_Line):
    """The file's first line."""

    schema_version: Literal[1]
    #: Where it came from: ``coder-postgres``, ``coder-api``, ``synth:<scenario>``, or any
    #: text a hand-written trace likes.
    source: str
    #: The moment ``start_s`` 0 stands for (RFC 3339, with a zone).
    started_at: AwareDatetime = Field(strict=False)
    #: The span the trace covers: no chat starts after it.
    duration_s: float = Field(ge=0)
    #: Chat lines that follow (a file cut short is caught by it).
    chats: int = Field(ge=0)


class TraceTurn(_Line):
    """One turn: the user's message and everything the agent did until it answered."""

    #: Seconds from the end of the previous turn (the chat's start, for the first) to this
    #: message: the person reading and typing.
    think_s: float = Field(ge=0)
    #: Characters of text in the user's message.
    prompt_chars: int = Field(ge=0)
    #: Assistant messages committed (LLM calls that produced output).
    steps: int = Field(ge=0)
    #: Tool calls by tool name (``execute``: 3).
    tools: dict[str, NonNegativeInt]
    #: ``spawn_agent`` calls: sub-agents this turn started.
    subagents: int = Field(ge=0)
    #: The turn's output tokens as the provider reported them; null when none said.
    output_tokens: int | None = Field(ge=0)
    #: From the message to the turn's last committed message; null when nothing answered.
    duration_s: float | None = Field(ge=0)

    def tool_calls(self) -> int:
        return sum(self.tools.values())


class TraceChat(_Line):
    """One chat: when it started, under which chat, in which workspace, and its turns."""

    #: An opaque hash, unique in the file; never Coder's chat id.
    chat: str = Field(min_length=1, max_length=128)
    #: Seconds after the header's ``started_at``.
    start_s: float = Field(ge=0)
    #: The ``chat`` of the chat that spawned this one (a sub-agent); null for a user's chat.
    parent: str | None
    #: A workspace slot (0, 1, ...); chats with the same slot share a workspace; null: none.
    workspace: int | None = Field(ge=0)
    turns: list[TraceTurn] = Field(min_length=1)


@dataclass(slots=True)
class Trace:
    """A whole trace as read: the header and the chats in file order, each checked."""

    header: TraceHeader
    chats: list[TraceChat]

    def turns(self) -> Iterable[TraceTurn]:
        for chat in self.chats:
            yield from chat.turns

    def encoded(self) -> Iterator[bytes]:
        """Its lines as JSON, the header first."""
        yield orjson.dumps(self.header.model_dump(mode="json"))
        for chat in self.chats:
            yield orjson.dumps(chat.model_dump(mode="json"))


def turns_json(turns: Sequence[TraceTurn]) -> str:
    """Turns as the JSON array a chat line holds. A ``str``, made to measure: the ``bytes``
    orjson returns keep its 4 KB buffer (measured), which for a million chats is 4 GB."""
    return orjson.dumps([turn.model_dump(mode="json") for turn in turns]).decode()


@dataclass(frozen=True, slots=True)
class ChatLine:
    """A chat as it will be written: its turns already JSON. Exports and synth hold these,
    not models: a turn costs ~150 bytes so, against ~1.3 KB as a ``TraceTurn``."""

    chat: str
    start_s: float
    parent: str | None
    workspace: int | None
    #: The turns as a JSON array.
    turns: str
    turn_count: int

    def encoded(self) -> bytes:
        return orjson.dumps(
            {
                "chat": self.chat,
                "start_s": self.start_s,
                "parent": self.parent,
                "workspace": self.workspace,
                "turns": orjson.Fragment(self.turns),
            }
        )


@dataclass(slots=True)
class TraceLines:
    """A trace being written: the header and each chat's line (``Trace`` is what is read)."""

    header: TraceHeader
    chats: list[ChatLine]

    def encoded(self) -> Iterator[bytes]:
        """Its lines as JSON, the header first: the same bytes ``Trace.encoded`` gives."""
        yield orjson.dumps(self.header.model_dump(mode="json"))
        for chat in self.chats:
            yield chat.encoded()

    def parsed(self) -> Trace:
        """As models, each line checked (for tests and small traces)."""
        chats = [TraceChat.model_validate(orjson.loads(chat.encoded())) for chat in self.chats]
        return Trace(self.header, chats)


@dataclass(frozen=True, slots=True)
class Problem:
    """A check across lines that failed: the 1-based file line, the key and what is wrong."""

    line: int
    key: str
    message: str


def check_chats(header: TraceHeader, chats: list[TraceChat]) -> Problem | None:
    """The first problem between lines (chat ``i`` is on line ``i + 2``), else None: unique
    chats, parents in the file that are user chats (Coder's sub-agents cannot spawn: depth 1,
    protocol §10.3) and started no later than their children, every start within
    ``duration_s``, and as many chats as the header says."""
    first: dict[str, int] = {}
    for index, chat in enumerate(chats):
        line = index + 2
        if chat.chat in first:
            return Problem(line, "chat", f"{chat.chat!r} is already line {first[chat.chat]}")
        first[chat.chat] = line
        if chat.start_s > header.duration_s + 1e-6:
            return Problem(
                line,
                "start_s",
                f"{chat.start_s:g} is after the trace's end (header duration_s "
                f"{header.duration_s:g})",
            )
    by_id = {chat.chat: chat for chat in chats}
    for index, chat in enumerate(chats):
        if chat.parent is None:
            continue
        parent = by_id.get(chat.parent)
        line = index + 2
        if parent is None:
            return Problem(line, "parent", f"{chat.parent!r} is not a chat in this file")
        if parent.parent is not None:
            return Problem(
                line,
                "parent",
                f"{chat.parent!r} is itself a sub-agent (line {first[chat.parent]}); "
                "Coder's sub-agents cannot spawn their own",
            )
        if chat.start_s < parent.start_s:
            return Problem(
                line,
                "start_s",
                f"{chat.start_s:g} is before its parent's start ({parent.start_s:g}, "
                f"line {first[chat.parent]})",
            )
    if len(chats) != header.chats:
        return Problem(
            len(chats) + 2,
            "chats",
            f"the header says {header.chats} chats but the file has {len(chats)} "
            "(was it cut short?)",
        )
    return None
