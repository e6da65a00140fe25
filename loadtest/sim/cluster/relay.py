"""Coder's relay of a chat's parts between replicas (``/chats/{chat}/stream/parts``): the worker's side.

As coderd/x/chatd/streamparts.go serves it (spec §9.4): the dialing replica writes a control
message ``{"history_version": N, "generation_attempt": M}`` to select an episode (again to
switch); the worker answers with the episode's parts buffered so far, then its live ones, each
in a JSON array of its own (one ``message_part`` event), ``seq`` exactly the last + 1. Nothing
else crosses: no hello, no commit marks, no message ids. The parts come from the worker's
message part buffer (``PartBuffer``, chatd's ``messagepartbuffer``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any, Final

import orjson

from loadtest.protocol.constants import (
    RELAY_CONTROL_FIELDS,
    SESSION_TOKEN_COOKIE,
    SESSION_TOKEN_HEADER,
)
from loadtest.protocol.events import MESSAGE_PART
from loadtest.sim.events import Event

#: Episodes kept per chat (Coder keeps a closed one at least 15 s, while subscribed).
KEEP_EPISODES: Final = 8

Key = tuple[int, int]


class _Episode:
    __slots__ = ("parts", "subscribers")

    def __init__(self) -> None:
        self.parts: list[Event] = []
        self.subscribers: list[asyncio.Queue[list[Event]]] = []


class PartBuffer:
    """chatd's message part buffer on one replica: per chat, the parts of each episode
    (history_version, generation_attempt) generated here, in order, and the relays reading
    each (coderd/x/chatd/ARCHITECTURE.md, "Message part buffer")."""

    def __init__(self) -> None:
        self._chats: dict[str, dict[Key, _Episode]] = {}

    def _episode(self, chat_id: str, key: Key) -> _Episode:
        episodes = self._chats.setdefault(chat_id, {})
        episode = episodes.get(key)
        if episode is None:
            episode = episodes[key] = _Episode()
            idle = [k for k, e in episodes.items() if not e.subscribers and k != key]
            for old in idle[: max(0, len(episodes) - KEEP_EPISODES)]:
                del episodes[old]
        return episode

    def add(self, chat_id: str, key: Key, parts: list[Event]) -> None:
        """Parts the chat's generation just produced (``AddPart``)."""
        episode = self._episode(chat_id, key)
        episode.parts.extend(parts)
        for queue in episode.subscribers:
            queue.put_nowait(parts)

    def subscribe(self, chat_id: str, key: Key) -> tuple[list[Event], asyncio.Queue[list[Event]]]:
        """``SubscribeToEpisode``: the parts so far, and a queue of those to come (an episode
        not begun yet is waited for, not an error)."""
        episode = self._episode(chat_id, key)
        queue: asyncio.Queue[list[Event]] = asyncio.Queue()
        episode.subscribers.append(queue)
        return list(episode.parts), queue

    def unsubscribe(self, chat_id: str, key: Key, queue: asyncio.Queue[list[Event]]) -> None:
        episode = self._chats.get(chat_id, {}).get(key)
        if episode is not None and queue in episode.subscribers:
            episode.subscribers.remove(queue)

    def episodes(self, chat_id: str) -> list[Key]:
        return list(self._chats.get(chat_id, {}))


def control(raw: str | bytes) -> Key | None:
    """A relay control message as the worker reads it; None when it is not one."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    history, attempt = (data.get(name) for name in RELAY_CONTROL_FIELDS)
    if type(history) is not int or type(attempt) is not int:
        return None
    return history, attempt


def frame(part: Event) -> str:
    """One part as its own frame (Go's JSON encoder ends it with a newline)."""
    return orjson.dumps([part]).decode() + "\n"


async def serve_relay(buffer: PartBuffer, chat_id: str, websocket: Any) -> None:
    """``/chats/{chat}/stream/parts``: the episode the dialer selects, part by part. A
    control message that cannot be read, or a part out of sequence, ends the connection
    (normal closure, as Coder's transport closes it)."""
    from starlette.websockets import WebSocketDisconnect

    await websocket.accept()
    controls: asyncio.Queue[Key | None] = asyncio.Queue()

    async def read() -> None:
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                raw = message.get("text") or message.get("bytes") or b""
                key = control(raw)
                if key is None:
                    break
                controls.put_nowait(key)
        finally:
            controls.put_nowait(None)

    reader = asyncio.create_task(read())
    selected: Key | None = None
    queue: asyncio.Queue[list[Event]] | None = None
    last_seq = 0
    try:
        while True:
            waits: set[asyncio.Task[Any]] = {asyncio.create_task(controls.get())}
            if queue is not None:
                waits.add(asyncio.create_task(queue.get()))
            done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            batches: list[list[Event]] = []
            for task in done:
                result = task.result()
                if result is None:
                    return  # the dialer went, or wrote something that is no control
                if isinstance(result, tuple):
                    if selected is not None and queue is not None:
                        buffer.unsubscribe(chat_id, selected, queue)
                    selected, last_seq = result, 0
                    replay, queue = buffer.subscribe(chat_id, selected)
                    batches = [replay]
                    break
                batches.append(result)
            for parts in batches:
                for part in parts:
                    seq = part[MESSAGE_PART].get("seq")
                    if seq != last_seq + 1:
                        return  # chatd: "message part sequence gap"
                    last_seq = seq
                    await websocket.send_text(frame(part))
    except (WebSocketDisconnect, OSError, RuntimeError):
        return
    finally:
        reader.cancel()
        if selected is not None and queue is not None:
            buffer.unsubscribe(chat_id, selected, queue)
        with contextlib.suppress(Exception):
            await websocket.close(1000)


def relay_token(headers: Mapping[str, str], cookies: Mapping[str, str]) -> str:
    """The session token a relay dial carries: the stream request's cookie, then its
    ``Coder-Session-Token`` header, then ``Authorization: Bearer`` (enterprise relay dialer
    ``ExtractSessionToken``; a token in the query string is not carried)."""
    token = cookies.get(SESSION_TOKEN_COOKIE) or headers.get(SESSION_TOKEN_HEADER.lower())
    if token:
        return token
    value = headers.get("authorization", "")
    if len(value) > 7 and value[:7].lower() == "bearer ":
        return value[7:].strip()
    return ""
