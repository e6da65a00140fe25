"""A user's open Coder tabs: each holds a ``/chats/watch`` socket, read in its own greenlet.

Every event is counted by kind; a ``status_change`` of a chat the user drives is paired with
the same change on the chat's stream (``core.watch.WatchLag``) for ``watch_lag``; a
``created`` chat whose parent is one of the user's, and that child's later status and
capacity changes, go to the user's ``core.steps.Subagents``; events of the account's other
chats are counted and dropped. A socket that drops is dialled
again after a pause, as the web UI does; a socket that cannot be opened is an error at
stage ``stream_open`` (a tab without its list).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gevent
import orjson

from loadtest.client.rest import ChatClient
from loadtest.client.ws import HandshakeError, WebSocketStream
from loadtest.core.steps import Subagents
from loadtest.core.turn import ErrorInfo
from loadtest.core.watch import WatchLag
from loadtest.locust.runtime import Runtime
from loadtest.protocol.models import WATCH_KINDS

#: Pause before dialling a dropped watch socket again.
REDIAL_S = 1.0
CLOSE_TIMEOUT_S = 1.0


class Tabs:
    """``count`` watch sockets of one user, and the pairing of their status changes."""

    def __init__(
        self,
        rt: Runtime,
        client: ChatClient,
        count: int,
        on_admitted: Callable[[str, int], object] | None = None,
        replica: int | None = None,
        subagents: Subagents | None = None,
    ) -> None:
        """``on_admitted`` hears of each chat the concurrent-agent gate admitted from its
        queue (a ``capacity_change`` to ``queued_for_capacity: false``), with its arrival.
        ``replica``: where the sockets connect, when the run has several replicas."""
        self._rt = rt
        self._client = client
        self._base_url = rt.replica_url(replica) if replica is not None else None
        self._on_admitted = on_admitted
        self._subagents = subagents
        self._lag = WatchLag()
        self._sockets: list[WebSocketStream | None] = [None] * count
        self._greenlets = [gevent.spawn(self._hold, index) for index in range(count)]
        self._closing = False

    def stream_saw(self, chat_id: str, status: str, t: int) -> None:
        """A live status on one of the user's chat streams."""
        for lag in self._lag.stream_saw(chat_id, status, t):
            self._rt.recorder.watch_lag(lag)

    def forget(self, chat_id: str) -> None:
        """The user is done with this chat: its status changes are no longer paired."""
        self._lag.forget(chat_id)

    def close(self) -> None:
        self._closing = True
        for ws in self._sockets:
            if ws is not None:
                ws.start_close()
        gevent.joinall(self._greenlets, timeout=CLOSE_TIMEOUT_S)
        for ws in self._sockets:
            if ws is not None:
                ws.abort()
        gevent.killall(self._greenlets, block=False)

    def _hold(self, index: int) -> None:
        while not self._closing:
            url, headers = self._client.watch_target(self._base_url)
            ws = WebSocketStream(url, headers)
            try:
                ws.connect()
            except (HandshakeError, OSError) as exc:
                detail = (
                    exc.body.decode("utf-8", "replace")[:300]
                    if isinstance(exc, HandshakeError)
                    else f"{type(exc).__name__}: {exc}"
                )
                status = exc.status if isinstance(exc, HandshakeError) else None
                info = ErrorInfo("stream_open", f"watch: {detail}", status_code=status)
                self._rt.recorder.error(info, time.perf_counter_ns())
                gevent.sleep(REDIAL_S)
                continue
            self._rt.recorder.count("watch_sockets_opened")
            self._sockets[index] = ws
            for frame, t in ws.frames():
                self._frame(frame, t, index)
            self._sockets[index] = None
            if not self._closing:
                gevent.sleep(REDIAL_S)

    def _frame(self, frame: bytes, t: int, socket: int) -> None:
        """One watch frame: era A ``{"type":"ping"}`` / ``{"type":"data","data":event}``,
        later eras the bare event. Anything else is a decode error."""
        recorder = self._rt.recorder
        try:
            data: Any = orjson.loads(frame)
        except orjson.JSONDecodeError:
            recorder.decode_error("watch: frame is not JSON", t)
            return
        if isinstance(data, dict) and data.get("type") == "ping":
            return
        if isinstance(data, dict) and data.get("type") == "data":
            data = data.get("data")
        kind = data.get("kind") if isinstance(data, dict) else None
        if not isinstance(kind, str):
            recorder.decode_error("watch: event without a kind", t)
            return
        recorder.watch_event(kind if kind in WATCH_KINDS else "unknown")
        chat = data.get("chat")
        if not isinstance(chat, dict):
            return
        if self._subagents is not None:
            self._child(kind, chat, t)
        if kind == "capacity_change" and chat.get("queued_for_capacity") is False:
            if self._on_admitted is not None and isinstance(chat.get("id"), str):
                self._on_admitted(chat["id"], t)
            return
        if kind != "status_change":
            return
        chat_id, status = chat.get("id"), chat.get("status")
        if isinstance(chat_id, str) and isinstance(status, str):
            for lag in self._lag.watch_saw(chat_id, status, t, socket):
                recorder.watch_lag(lag)

    def _child(self, kind: str, chat: dict[str, Any], t: int) -> None:
        """A sub-agent's ``created`` (protocol §10.3: its ``parent_chat_id``), status and
        admission by the concurrent-agent gate, for the user's ``Subagents``."""
        subagents = self._subagents
        chat_id = chat.get("id")
        if subagents is None or not isinstance(chat_id, str):
            return
        if kind == "created":
            parent = chat.get("parent_chat_id")
            if isinstance(parent, str):
                subagents.created(chat_id, parent, chat.get("status"), t)
        elif not subagents.is_child(chat_id):
            return
        elif kind == "status_change" and isinstance(chat.get("status"), str):
            subagents.status(chat_id, chat["status"], t)
        elif kind == "capacity_change" and chat.get("queued_for_capacity") is False:
            subagents.admitted(chat_id, t)
