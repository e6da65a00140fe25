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
from loadtest.trace.model import Trace, TraceChat, TraceTurn

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
        file=file, speedup=speedup, loop=loop, window=window, span_s=span, chats=chats
    )


def control_block(turn: TraceTurn) -> str:
    """The recorded shape for the mock LLM (loadtest/mockllm/control.py): tool calls of the
    turn's most used tool, and its sub-agents; empty for a plain answer. Output tokens are
    the mock's own setting, not asked for per turn."""
    calls = turn.tool_calls()
    keys: dict[str, object] = {}
    if calls:
        keys["tool_calls_this_turn"] = calls
        keys["tool"] = Counter(turn.tools).most_common(1)[0][0]
    if turn.subagents:
        keys["subagents_this_turn"] = turn.subagents
    return render(**keys) if keys else ""


def prompt(turn: TraceTurn) -> str:
    """A prompt of the recorded size (``prompt_chars`` of text after the control block)."""
    need = max(1, turn.prompt_chars)
    text = (FILLER * (need // len(FILLER) + 1))[:need]
    return control_block(turn) + text
