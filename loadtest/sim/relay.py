"""Coder's replica-to-replica relay of a chat's parts (``/stream/parts``): its items, its server side."""

from __future__ import annotations

import asyncio
from typing import Any, Final

import orjson

from loadtest.sim.chats import Chat
from loadtest.sim.events import Event

#: A relay item: "message <id> is committed here" (never sent to a client).
COMMIT: Final = "relay:commit"
#: The relay's first item: the worker's newest message id, before its buffered parts.
HELLO: Final = "relay:hello"
#: What a relay request says of itself (Coder's header, protocol §5.1).
RELAY_SOURCE_HEADER: Final = "X-Coder-Relay-Source-Replica"
#: The stream's auth headers a relay forwards (Coder forwards these three).
CREDENTIAL_HEADERS: Final = ("coder-session-token", "authorization", "cookie")


async def serve_relay(
    chat: Chat, relays: dict[str, list[asyncio.Queue[list[Event]]]], websocket: Any
) -> None:
    """``/chats/{chat}/stream/parts``: a chat we run, as another replica's streams need it.
    First a control message: the episode under way (``history_version``,
    ``generation_attempt``, as Coder's relay control message), our newest message id and
    the parts buffered for the episode; then every part, mark and commit mark in our order."""
    from starlette.websockets import WebSocketDisconnect

    chat_id = chat.id
    await websocket.accept()
    queue: asyncio.Queue[list[Event]] = asyncio.Queue()
    relays.setdefault(chat_id, []).append(queue)
    newest = chat.messages[-1].id if chat.messages else 0
    buffered = list(chat.parts) if chat.active and not chat.buffer_done else []
    gone = asyncio.create_task(websocket.receive())
    try:
        hello = {
            "type": HELLO,
            "history_version": chat.episode.history,
            "generation_attempt": chat.episode.attempt,
            "last_message_id": newest,
            "parts": buffered,
        }
        await websocket.send_text(orjson.dumps([hello]).decode())
        while True:
            getting = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getting, gone}, return_when=asyncio.FIRST_COMPLETED)
            if gone in done:
                getting.cancel()
                return
            items = getting.result()
            while not queue.empty():
                items = items + queue.get_nowait()
            await websocket.send_text(orjson.dumps(items).decode())
    except (WebSocketDisconnect, OSError, RuntimeError):
        return
    finally:
        gone.cancel()
        queues = relays.get(chat_id)
        if queues is not None and queue in queues:
            queues.remove(queue)
            if not queues:
                del relays[chat_id]
