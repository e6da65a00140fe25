"""Server-sent events, written by hand: what the dialect builders produce.

A dialect's ``stream`` returns a ``Stream``: an iterator of exactly ``len(plan.pieces) + 2``
byte strings: the head (sent at once; empty when the API's first chunk must wait for the first
token), one per output token (paced), then the tail (sent after the last token). Items are built lazily, in order, so a builder may number its events as it
goes and a long reply never sits in memory whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

Stream = Iterator[bytes]

DONE = b"data: [DONE]\n\n"


def data(payload: Any) -> bytes:
    """An unnamed event, as OpenAI Chat Completions sends."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def event(name: str, payload: Any) -> bytes:
    """A named event, as the Responses and Messages APIs send (Anthropic's SDK skips unnamed ones)."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
