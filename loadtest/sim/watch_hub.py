"""Fan-out of chat-list changes to each user's ``/chats/watch`` sockets, and what each
delivered: the store's change hook feeds it (Coder's pubsub channel
``chat:owner:<owner_id>``); ``watch.py`` serves the sockets.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

import orjson

from loadtest.protocol.eras import Era
from loadtest.protocol.models import Chat as ChatModel
from loadtest.protocol.models import ChatWatchEvent
from loadtest.sim.chat_state import ChatState
from loadtest.sim.chat_wire import chat_wire


class WatchSocket:
    """One watch socket's queue of (kind, frame)."""

    __slots__ = ("closed", "owner_id", "queue", "wake")

    def __init__(self, owner_id: str) -> None:
        self.owner_id = owner_id
        self.queue: deque[tuple[str, bytes]] = deque()
        self.wake = asyncio.Event()
        self.closed = False


class WatchHub:
    """The watch sockets of each user, and what each event looks like in this era."""

    def __init__(self, era: Era) -> None:
        self.era = era
        self.sockets: dict[str, list[WatchSocket]] = {}
        #: Events delivered, by kind (each socket's copy counts).
        self.sent: dict[str, int] = {}
        #: A replica of a cluster sends every event through the pubsub instead (owner, the
        #: event's JSON), and learns whose events its sockets want (owner, wanted or not).
        self.broadcast: Callable[[str, bytes], object] | None = None
        self.on_owner: Callable[[str, bool], object] | None = None

    def subscribe(self, owner_id: str) -> WatchSocket:
        socket = WatchSocket(owner_id)
        first = owner_id not in self.sockets
        self.sockets.setdefault(owner_id, []).append(socket)
        if first and self.on_owner is not None:
            self.on_owner(owner_id, True)
        return socket

    def unsubscribe(self, socket: WatchSocket) -> None:
        socket.closed = True
        socket.wake.set()
        mine = self.sockets.get(socket.owner_id)
        if mine and socket in mine:
            mine.remove(socket)
            if not mine:
                del self.sockets[socket.owner_id]
                if self.on_owner is not None:
                    self.on_owner(socket.owner_id, False)

    def publish(self, chat: ChatState, kind: str) -> None:
        """The store's change hook: tell every tab of the chat's owner (in a cluster, every
        tab on every replica, through the pubsub). Spec §9.3: ``{kind, chat}`` only, even
        for ``action_required`` (its tool calls are on the chat stream)."""
        if self.broadcast is None and chat.owner_id not in self.sockets:
            return
        event = ChatWatchEvent(kind=kind, chat=ChatModel.model_validate(chat_wire(self.era, chat)))
        wire = event.wire()
        if self.broadcast is not None:
            self.broadcast(chat.owner_id, orjson.dumps(wire))
            return
        frame = orjson.dumps({"type": "data", "data": wire} if self.era is Era.A else wire)
        self.deliver(chat.owner_id, kind, frame)

    def deliver(self, owner_id: str, kind: str, frame: bytes) -> None:
        for socket in self.sockets.get(owner_id, ()):
            socket.queue.append((kind, frame))
            socket.wake.set()

    def wire(self) -> dict[str, int]:
        return dict(self.sent)
