"""A trace as a replay plan: the chats a load process starts, when, and each turn's prompt.

Pure: a read ``Trace`` in, plain data out (``chatload run --trace`` ships it to its workers in
the run's settings). Only users' chats are started: a sub-agent (a chat with a ``parent``) is
the server's doing, asked for through its parent's turn (``subagents`` in the control block).
"""

from __future__ import annotations

import math
from collections import Counter

from pydantic import BaseModel, Field

from loadtest.mockllm.control import render
from loadtest.protocol.agents import SPAWN_AGENT, WAIT_AGENT
from loadtest.trace.model import Trace, TraceChat, TraceTurn

#: Tool calls a sub-agent's spawning and waiting make: the server's, not the turn's own.
AGENT_TOOLS = frozenset({SPAWN_AGENT, WAIT_AGENT})
#: What a prompt is padded with to reach the recorded size: words, as people type.
FILLER = "Please look at this and report back briefly. "


class Window(BaseModel):
    """``--window START:END``: the chats that start in ``[start_s, end_s)`` of the trace,
    replayed as if the trace began at ``start_s``."""

    start_s: float = Field(0.0, ge=0)
    #: None: to the trace's end (JSON has no infinity: the plan travels to workers).
    end_s: float | None = None

    @classmethod
    def parse(cls, text: str) -> Window:
        """``START:END`` in seconds (either may be empty); a clear ValueError otherwise."""
        start, sep, end = text.partition(":")
        if not sep:
            raise ValueError(f"--window {text!r}: write START:END in seconds, e.g. 600:1200")
        try:
            window = cls(
                start_s=float(start) if start.strip() else 0.0,
                end_s=float(end) if end.strip() else None,
            )
        except ValueError:
            raise ValueError(
                f"--window {text!r}: START and END are seconds, e.g. 600:1200"
            ) from None
        if window.end_s is not None and window.end_s <= window.start_s:
            raise ValueError(f"--window {text!r}: END must come after START")
        return window


class ReplayPlan(BaseModel):
    """What every load process needs to replay a trace (shipped in the run's settings)."""

    file: str
    speedup: float = Field(gt=0)
    loop: bool = False
    window: Window = Field(default_factory=Window)
    #: The window's span in trace seconds: one pass of ``--loop`` lasts this / speedup.
    span_s: float = Field(ge=0)
    #: Users' chats in the window, by start, offsets from the window's start.
    chats: list[TraceChat]
    #: Per user's chat (by ``chat``), per turn: the tool calls each sub-agent it spawned made
    #: (their mean, when a turn spawned several), for the control block.
    child_tool_calls: dict[str, list[int]] = Field(default_factory=dict)

    @property
    def turns(self) -> int:
        return sum(len(chat.turns) for chat in self.chats)

    def mine(self, slot: int, slots: int) -> list[TraceChat]:
        """This load process's share: every ``slots``-th chat from ``slot`` (deterministic,
        so N workers together start each chat once)."""
        return self.chats[slot::slots]


def plan(trace: Trace, file: str, speedup: float, window: Window, loop: bool) -> ReplayPlan:
    """The users' chats of ``trace`` that start in ``window``, shifted to its start."""
    until = math.inf if window.end_s is None else window.end_s
    end = min(until, trace.header.duration_s)
    chats = sorted(
        (
            chat.model_copy(update={"start_s": chat.start_s - window.start_s})
            for chat in trace.chats
            if chat.parent is None and window.start_s <= chat.start_s < until
        ),
        key=lambda chat: chat.start_s,
    )
    span = max(end - window.start_s, chats[-1].start_s if chats else 0.0)
    return ReplayPlan(
        file=file,
        speedup=speedup,
        loop=loop,
        window=window,
        span_s=span,
        chats=chats,
        child_tool_calls=_child_tool_calls(trace, {chat.chat for chat in chats}),
    )


def _own_tool_calls(chat: TraceChat) -> int:
    return sum(
        n for turn in chat.turns for name, n in turn.tools.items() if name not in AGENT_TOOLS
    )


def _child_tool_calls(trace: Trace, roots: set[str]) -> dict[str, list[int]]:
    """Each root's children, in start order, dealt to its turns in order by the turns'
    ``subagents`` (spawns come in call order); per turn, the mean of those children's own
    tool calls."""
    children: dict[str, list[TraceChat]] = {}
    for chat in sorted(trace.chats, key=lambda chat: chat.start_s):
        if chat.parent in roots:
            children.setdefault(chat.parent, []).append(chat)
    dealt: dict[str, list[int]] = {}
    for root in trace.chats:
        kids = children.get(root.chat)
        if not kids:
            continue
        per_turn, at = [], 0
        for turn in root.turns:
            mine = kids[at : at + turn.subagents]
            at += turn.subagents
            per_turn.append(round(sum(map(_own_tool_calls, mine)) / len(mine)) if mine else 0)
        dealt[root.chat] = per_turn
    return dealt


def control_block(turn: TraceTurn, child_tool_calls: int = 0) -> str:
    """The recorded shape for the mock LLM or the simulator (loadtest/mockllm/control.py):
    the turn's own tool calls (of its most used tool; ``spawn_agent`` and ``wait_agent`` are
    the sub-agents' doing), its sub-agents and the tool calls each child makes; empty for a
    plain answer. Output tokens are the server's own setting, not asked for per turn."""
    own = {name: n for name, n in turn.tools.items() if name not in AGENT_TOOLS and n}
    keys: dict[str, object] = {}
    if own:
        keys["tool_calls_this_turn"] = sum(own.values())
        keys["tool"] = Counter(own).most_common(1)[0][0]
    if turn.subagents:
        keys["subagents_this_turn"] = turn.subagents
        keys["subagent_tool_calls"] = child_tool_calls
    return render(**keys) if keys else ""


def prompt(turn: TraceTurn, child_tool_calls: int = 0) -> str:
    """A prompt of the recorded size (``prompt_chars`` of text after the control block)."""
    need = max(1, turn.prompt_chars)
    text = (FILLER * (need // len(FILLER) + 1))[:need]
    return control_block(turn, child_tool_calls) + text
