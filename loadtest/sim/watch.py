"""``GET /chats/watch``: each user's chat-list updates, one socket per open browser tab.

Sections 3.8 and 8.5: era A sends ``{"type":"ping"}`` first, then each event wrapped as
``{"type":"data","data":{kind, chat}}``; later eras send each ``ChatWatchEvent`` bare. Coder
backs it with the pubsub channel ``chat:owner:<owner_id>``; here ``watch_hub`` feeds every
socket of the chat's owner, and each socket counts what it delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from uvicorn.protocols.utils import ClientDisconnected

from loadtest.protocol.eras import Era
from loadtest.sim.errors import ApiError
from loadtest.sim.watch_hub import WatchHub, WatchSocket
from loadtest.sim.web import error_response

if TYPE_CHECKING:
    from loadtest.sim.state import Sim

PING_FRAME = b'{"type":"ping"}'


async def _write(hub: WatchHub, socket: WatchSocket, send: Send) -> None:
    while not socket.closed:
        if not socket.queue:
            socket.wake.clear()
            await socket.wake.wait()
            continue
        kind, frame = socket.queue.popleft()
        await send({"type": "websocket.send", "text": frame.decode()})
        hub.sent[kind] = hub.sent.get(kind, 0) + 1


async def _read(sim: Sim, socket: WatchSocket, receive: Receive, send: Send) -> None:
    """Wait for the client to go; a data frame from it closes the socket (section 8.4)."""
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            break
        code, reason = (
            (1002, "Clients cannot send messages for one-way WebSockets")
            if sim.era is Era.A
            else (1008, "unexpected data message")
        )
        with contextlib.suppress(ClientDisconnected):
            await send({"type": "websocket.close", "code": code, "reason": reason})
        break
    socket.closed = True
    socket.wake.set()


class WatchEndpoint:
    """The watch socket, as a raw ASGI app like the chat stream."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sim = self.sim
        websocket = WebSocket(scope, receive, send)
        try:
            user = sim.chat_user(
                websocket.headers, websocket.cookies, websocket.query_params, websocket.url.path
            )
        except ApiError as error:
            await websocket.send_denial_response(error_response(error))
            return
        socket = sim.watch.subscribe(user.id)
        try:
            await websocket.accept()
            if sim.era is Era.A:
                await send({"type": "websocket.send", "text": PING_FRAME.decode()})
            reader = asyncio.create_task(_read(sim, socket, receive, send))
            try:
                await _write(sim.watch, socket, send)
            finally:
                reader.cancel()
        except ClientDisconnected:
            pass
        finally:
            sim.watch.unsubscribe(socket)
