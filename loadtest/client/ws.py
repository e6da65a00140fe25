"""A read-only websocket client: websockets' sans-I/O ``ClientProtocol`` on a plain socket.

Why not ``websockets.sync.client``: it spends a reader thread (under gevent, a greenlet and
three file descriptors) per connection, and closing it while the server still pushes crashed
gevent processes (websockets 17.3/17.4, ARCHITECTURE.md). Here one connection is one socket:
the caller's greenlet reads, and under Locust's gevent patching the socket yields. The frame
is timestamped right after the ``recv`` that completed it, before anything decodes it.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from loadtest.client.tls import tls_context
from loadtest.core.decode import MAX_FRAME_BYTES

RECV_BYTES = 262_144
#: Reads between two yields: under gevent a socket with data waiting never blocks, so a busy
#: stream would otherwise keep every other greenlet (users, the health sampler) waiting.
READS_PER_YIELD = 16


class HandshakeError(Exception):
    """The server refused the upgrade: an HTTP status and Coder's error body, if any."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body
        super().__init__(f"websocket upgrade refused: HTTP {status}")


@dataclass(slots=True)
class Closed:
    """How the connection ended: the close frame's code and reason, or 1006 when none came."""

    code: int
    reason: str

    @property
    def normal(self) -> bool:
        """1000 and 1001 are a clean end, as the seed client treats them."""
        return self.code in (1000, 1001)


Dial = Callable[[tuple[str, int], float], socket.socket]


class WebSocketStream:
    """One stream connection, read by the greenlet that owns it.

    ``dial`` opens the TCP connection (``socket.create_connection``); tests hand in one end of
    a socketpair instead, as httpx tests hand in a transport.
    """

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        timeout: float = 30.0,
        dial: Dial = socket.create_connection,
    ) -> None:
        self._dial = dial
        self._uri = parse_uri(url)
        self._headers = dict(headers)
        self._timeout = timeout
        self._sock: socket.socket | None = None
        self._protocol = ClientProtocol(self._uri, max_size=MAX_FRAME_BYTES + 1024)
        #: Frames that arrived in the same read as the upgrade response, and when.
        self._early: list[Frame] = []
        self._early_at = 0
        self.closed: Closed | None = None

    def connect(self) -> None:
        """Dial and complete the upgrade; raises ``HandshakeError`` or ``OSError``."""
        sock = self._dial((self._uri.host, self._uri.port), self._timeout)
        if self._uri.secure:
            sock = tls_context().wrap_socket(sock, server_hostname=self._uri.host)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        request = self._protocol.connect()
        for name, value in self._headers.items():
            request.headers[name] = value
        self._protocol.send_request(request)
        self._flush()
        while self._protocol.state is State.CONNECTING:
            data = sock.recv(RECV_BYTES)
            self._early_at = time.perf_counter_ns()
            if not data:
                self._protocol.receive_eof()
            else:
                self._protocol.receive_data(data)
            for event in self._protocol.events_received():
                if isinstance(event, Frame):
                    self._early.append(event)
                elif self._protocol.handshake_exc is not None:
                    self.abort()
                    exc = self._protocol.handshake_exc
                    if isinstance(exc, InvalidStatus):
                        raise HandshakeError(
                            exc.response.status_code, bytes(exc.response.body or b"")
                        )
                    raise OSError(f"websocket handshake failed: {exc}")
            if not data and self._protocol.state is State.CONNECTING:
                self.abort()
                raise OSError("connection closed during the websocket handshake")
        sock.settimeout(None)

    def frames(self) -> Iterator[tuple[bytes, int]]:
        """Text frames as ``(payload, receive time ns)`` until the connection ends.

        Afterwards ``closed`` says how it ended. Pings are answered; binary frames skipped.
        """
        sock = self._sock
        assert sock is not None, "connect() first"
        protocol = self._protocol
        clock = time.perf_counter_ns
        parts: list[bytes] = []
        early: list[Any] = self._early
        self._early = []
        reads = 0
        while True:
            reads += 1
            if reads == READS_PER_YIELD:
                reads = 0
                time.sleep(0)  # gevent's sleep once Locust has patched time: a yield
            if early:
                # The server's first frames came in the same read as the upgrade response.
                received, t, eof = early, self._early_at, False
                early = []
            else:
                try:
                    data = sock.recv(RECV_BYTES)
                except OSError:
                    data = b""
                t = clock()
                eof = not data
                if eof:
                    protocol.receive_eof()
                else:
                    protocol.receive_data(data)
                received = protocol.events_received()
            for event in received:
                if not isinstance(event, Frame):
                    continue
                opcode = event.opcode
                if opcode is Opcode.TEXT:
                    if event.fin:
                        yield bytes(event.data), t
                    else:
                        parts = [bytes(event.data)]
                elif opcode is Opcode.CONT and parts:
                    parts.append(bytes(event.data))
                    if event.fin:
                        payload, parts = b"".join(parts), []
                        yield payload, t
            if protocol.writes:
                try:
                    self._flush()  # a pong, or the echo of the server's close
                except OSError:
                    eof = True  # the server already went: what it sent was read above
            if eof or protocol.state is State.CLOSED:
                self.closed = self._close_info()
                self.abort()
                return

    def start_close(self, code: int = 1000) -> None:
        """Send a close frame and leave the socket to its reader: the server echoes the close
        after whatever it already sent, so the reader sees every frame the server counted."""
        if self._sock is None or self._protocol.state is not State.OPEN:
            return
        try:
            self._protocol.send_close(code)
            self._flush()
        except OSError:
            self.abort()

    def close(self, code: int = 1000) -> None:
        """Start a clean close and drop the socket without waiting on a busy server."""
        self.start_close(code)
        self.abort()

    def abort(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _flush(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for chunk in self._protocol.data_to_send():
            if chunk:
                sock.sendall(chunk)

    def _close_info(self) -> Closed:
        received: Close | None = self._protocol.close_rcvd
        if received is None:
            return Closed(1006, "connection closed without a close frame")
        return Closed(received.code, received.reason)
