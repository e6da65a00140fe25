"""One way to serve: uvicorn on a socket bound first, one ``listening`` line, exit 0 on signals.

The simulator and the mock LLM both run this way. The socket is bound before uvicorn starts,
so ``--port 0`` works and a bind failure is a clear error; once serving, exactly one line
goes to stdout (``banner(url)``), which a parent process waits for and reads the port from;
SIGINT and SIGTERM shut down and exit 0 (uvicorn re-raises the signal by default, which
makes a SIGTERM a failure); a second SIGINT forces the exit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

import uvicorn

log = logging.getLogger("chatload.serve")

#: Runs when shutdown starts, before uvicorn closes the connections (the simulator closes
#: its streams with 1001 there).
OnShutdown = Callable[[], Awaitable[None]]


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_shutdown: OnShutdown | None) -> None:
        super().__init__(config)
        self._on_shutdown = on_shutdown

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Unlike uvicorn's, record no signal to re-raise after shutdown: exit status 0.
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._on_shutdown is not None:
            await self._on_shutdown()
        await super().shutdown(sockets)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket whose protocol number says TCP. ``socket.create_server`` leaves
    it 0, and asyncio turns Nagle's algorithm off (``TCP_NODELAY``) only on accepted sockets
    whose protocol is ``IPPROTO_TCP``: with it on, a response's body waited for the client's
    delayed ACK of its headers, 40 ms on every GET, and stream frames bunched up."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if os.name not in ("nt", "cygwin"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen()
    except BaseException:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def serve(
    app: Any,
    *,
    host: str,
    port: int,
    banner: Callable[[str], str],
    on_shutdown: OnShutdown | None = None,
    sock: socket.socket | None = None,
    **uvicorn_options: Any,
) -> int:
    """Serve ``app`` until SIGINT/SIGTERM: 0 after a clean stop, 1 when it could not start.
    ``sock`` is a socket the caller already bound (to learn its URL first)."""
    if sock is None:
        try:
            sock = bind(host, port)
        except OSError as exc:
            log.error("cannot listen on %s port %d: %s", host, port, exc)
            return 1
    options = {"timeout_graceful_shutdown": 1, "server_header": False, **uvicorn_options}
    server = _Server(uvicorn.Config(app, **options), on_shutdown)
    line = banner(url_of(sock))

    async def run() -> int:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.005)
        if server.started:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        await task
        return 0 if server.started else 1

    return asyncio.run(run())
