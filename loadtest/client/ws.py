"""A read-only websocket client: websockets' sans-I/O ``ClientProtocol`` on a plain socket.

Why not ``websockets.sync.client``: it spends a reader thread (under gevent, a greenlet and
three file descriptors) per connection, and closing it while the server still pushes crashed
gevent processes (websockets 17.3/17.4, ARCHITECTURE.md). Here one connection is one socket:
the caller's greenlet reads, and under Locust's gevent patching the socket yields. The frame
is timestamped right after the ``recv`` that completed it, before anything decodes it.

The frames a server sends under load are unmasked, unfragmented text frames, and websockets'
generator-based parser costs more per frame than decoding one does. So after the upgrade this
client cuts such frames out of the bytes it reads itself, and hands every other frame (ping,
pong, close, a fragment, a binary frame, RSV bits, a masked frame, one over the size limit)
to the protocol whole, with nothing before or after it: the protocol's parser stays at a frame
boundary, and answers pings, echoes closes and fails on protocol errors as it always did.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from loadtest.client.receive import receive
from loadtest.client.tcp import connect
from loadtest.client.tls import tls_context
from loadtest.core.decode import MAX_FRAME_BYTES

#: Reads between two yields: under gevent a socket with data waiting never blocks, so a busy
#: stream would otherwise keep every other greenlet (users, the health sampler) waiting.
READS_PER_YIELD = 16
#: The longest upgrade response header this client waits for before handing bytes over.
MAX_RESPONSE_HEAD = 65_536
#: A final (FIN) text frame with no RSV bits: the only frame the fast path takes.
_FIN_TEXT = 0x81
_FIN_BINARY = 0x82


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


def frame_end(data: bytes, pos: int) -> int:
    """Where the frame that starts at ``pos`` ends (header, mask key and payload), or, while
    ``data`` holds too little of its header to say, the least length it must reach first."""
    n = len(data)
    if n < pos + 2:
        return pos + 2
    b1 = data[pos + 1]
    code = b1 & 0x7F
    start = pos + 2
    if code == 126:
        start += 2
        if n < start:
            return start
        length = int.from_bytes(data[pos + 2 : start], "big")
    elif code == 127:
        start += 8
        if n < start:
            return start
        length = int.from_bytes(data[pos + 2 : start], "big")
    else:
        length = code
    return start + (4 if b1 & 0x80 else 0) + length


class WebSocketStream:
    """One stream connection, read by the greenlet that owns it.

    ``dial`` opens the TCP connection (``tcp.connect``); tests hand in one end of
    a socketpair instead, as httpx tests hand in a transport. ``fast_frames=False`` leaves
    every frame to websockets' parser (the bench compares the two).
    """

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        timeout: float = 30.0,
        dial: Dial = connect,
        fast_frames: bool = True,
    ) -> None:
        self._dial = dial
        self._uri = parse_uri(url)
        self._headers = dict(headers)
        self._timeout = timeout
        self._sock: socket.socket | None = None
        self._protocol = ClientProtocol(self._uri, max_size=MAX_FRAME_BYTES + 1024)
        self._fast = fast_frames
        #: Bytes that came in the same read as the upgrade response, not yet parsed, and when.
        self._early = b""
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
        protocol = self._protocol
        request = protocol.connect()
        for name, value in self._headers.items():
            request.headers[name] = value
        protocol.send_request(request)
        self._flush()
        head: bytes | None = (
            b""  # the response so far, until its blank line: the protocol gets no more
        )
        while protocol.state is State.CONNECTING:
            data = receive(sock)
            self._early_at = time.perf_counter_ns()
            if not data:
                protocol.receive_eof()
            elif head is not None:
                head += data
                blank = head.find(b"\r\n\r\n")
                if blank >= 0 or len(head) > MAX_RESPONSE_HEAD:
                    cut = blank + 4 if blank >= 0 else len(head)
                    protocol.receive_data(head[:cut])
                    rest, head = head[cut:], None
                    if protocol.state is State.OPEN:
                        self._early = rest  # the first frames: the reader parses them
                    elif rest:
                        protocol.receive_data(rest)  # a refusal's body
            else:
                protocol.receive_data(data)
            for _event in protocol.events_received():
                if protocol.handshake_exc is not None:
                    self.abort()
                    exc = protocol.handshake_exc
                    if isinstance(exc, InvalidStatus):
                        raise HandshakeError(
                            exc.response.status_code, bytes(exc.response.body or b"")
                        )
                    raise OSError(f"websocket handshake failed: {exc}")
            if not data and protocol.state is State.CONNECTING:
                self.abort()
                raise OSError("connection closed during the websocket handshake")
        sock.settimeout(None)
        if not self._fast and self._early:
            early, self._early = self._early, b""
            protocol.receive_data(early)

    def frames(self) -> Iterator[tuple[bytes, int]]:
        """Text frames as ``(payload, receive time ns)`` until the connection ends.

        Afterwards ``closed`` says how it ended. Pings are answered; binary frames skipped.
        """
        if not self._fast:
            return self._protocol_frames()
        return self._fast_frames()

    def _fast_frames(self) -> Iterator[tuple[bytes, int]]:
        sock = self._sock
        assert sock is not None, "connect() first"
        protocol = self._protocol
        clock = time.perf_counter_ns
        limit = protocol.max_message_size or MAX_FRAME_BYTES
        parts: list[bytes] = []
        #: Set once the protocol owns the byte stream for good (it received a close or
        #: failed): from then on every byte goes to it, as it discards them.
        whole = False
        #: A fragmented message is under way: every frame goes to the protocol until it ends.
        fragmented = False
        data, t = self._early, self._early_at
        self._early = b""
        pending: list[bytes] = []  # bytes read but not yet enough for the frame they start
        have = 0
        need = 0
        reads = 0
        while True:
            eof = False
            if not data:  # else: the bytes that came with the upgrade response
                reads += 1
                if reads == READS_PER_YIELD:
                    reads = 0
                    time.sleep(0)  # gevent's sleep once Locust has patched time: a yield
                try:
                    chunk = receive(sock)
                except OSError:
                    chunk = b""
                t = clock()
                if not chunk:
                    eof = True
                    data = b"".join(pending)
                    pending, have = [], 0
                elif pending:
                    pending.append(chunk)
                    have += len(chunk)
                    if have < need:
                        continue
                    data = b"".join(pending)
                    pending, have = [], 0
                else:
                    data = chunk
            if eof or whole:
                if data:
                    protocol.receive_data(data)
                if eof:
                    protocol.receive_eof()
                data = b""
                yield from _received(protocol, parts, t)
            else:
                n = len(data)
                pos = 0
                while pos + 1 < n:
                    b0 = data[pos]
                    b1 = data[pos + 1]
                    if b1 < 126:
                        start = pos + 2
                        end = start + b1
                    elif b1 == 126:
                        start = pos + 4
                        end = start + (data[pos + 2] << 8 | data[pos + 3]) if start <= n else start
                    else:  # a 64-bit length, or a masked frame (which the protocol refuses)
                        start = pos + 10
                        end = frame_end(data, pos)
                    if end > n:
                        break
                    if (
                        b0 in (_FIN_TEXT, _FIN_BINARY)
                        and b1 < 128
                        and not fragmented
                        and end - start <= limit
                    ):
                        if b0 == _FIN_TEXT:
                            yield data[start:end], t
                        pos = end  # a binary frame is skipped, as the protocol path skips it
                        continue
                    # Any other frame: the protocol's, exactly this frame, nothing more.
                    protocol.receive_data(data[pos:end])
                    pos = end
                    yield from _received(protocol, parts, t)
                    whole = protocol.close_rcvd is not None or protocol.parser_exc is not None
                    fragmented = protocol.current_size is not None
                    if whole:
                        break
                rest = data[pos:] if pos < n else b""
                data = b""
                if whole:
                    if rest:
                        protocol.receive_data(rest)
                        yield from _received(protocol, parts, t)
                elif rest:
                    need = frame_end(rest, 0)
                    b1 = rest[1] if len(rest) > 1 else 0
                    if b1 & 0x80 or need - 14 > limit:
                        # A masked frame, or one too big: the protocol fails on its header.
                        whole = True
                        protocol.receive_data(rest)
                        yield from _received(protocol, parts, t)
                    else:
                        pending, have = [rest], len(rest)
            if protocol.writes:
                try:
                    self._flush()  # a pong, or the echo of the server's close
                except OSError:
                    eof = True  # the server already went: what it sent was read above
            if eof or protocol.state is State.CLOSED:
                self.closed = self._close_info()
                self.abort()
                return

    def _protocol_frames(self) -> Iterator[tuple[bytes, int]]:
        """Every frame through websockets' own parser."""
        sock = self._sock
        assert sock is not None, "connect() first"
        protocol = self._protocol
        clock = time.perf_counter_ns
        parts: list[bytes] = []
        t = self._early_at
        reads = 0
        while True:
            yield from _received(protocol, parts, t)
            eof = False
            if protocol.writes:
                try:
                    self._flush()
                except OSError:
                    eof = True
            if eof or protocol.state is State.CLOSED:
                self.closed = self._close_info()
                self.abort()
                return
            reads += 1
            if reads == READS_PER_YIELD:
                reads = 0
                time.sleep(0)
            try:
                data = receive(sock)
            except OSError:
                data = b""
            t = clock()
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()

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


def _received(protocol: ClientProtocol, parts: list[bytes], t: int) -> Iterator[tuple[bytes, int]]:
    """The text messages among the frames the protocol parsed since it was last asked."""
    for event in protocol.events_received():
        yield from _payloads(event, parts, t)


def _payloads(event: object, parts: list[bytes], t: int) -> Iterator[tuple[bytes, int]]:
    """A text message the protocol parsed, whole or from its fragments (kept in ``parts``)."""
    if not isinstance(event, Frame):
        return
    opcode = event.opcode
    if opcode is Opcode.TEXT:
        if event.fin:
            yield bytes(event.data), t
        else:
            parts[:] = [bytes(event.data)]
    elif opcode is Opcode.CONT and parts:
        parts.append(bytes(event.data))
        if event.fin:
            payload = b"".join(parts)
            parts.clear()
            yield payload, t
