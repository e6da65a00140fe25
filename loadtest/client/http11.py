"""A small HTTP/1.1 client: one keep-alive connection on a plain socket, one request at a time.

The REST client's transport (``client/rest.py``), as ``client/ws.py`` is the stream's: the
caller's greenlet writes and reads, and under Locust's gevent patching the socket yields.
What it does: a request written in one ``sendall`` (no Nagle wait between head and body),
``Content-Length``, chunked and close-delimited bodies, 1xx answers skipped, keep-alive with
an idle expiry below servers' (uvicorn 5 s) and a check that the server has not closed an idle
connection before it is used again, TLS from the process's one context. What it leaves out,
because chatload's calls never need them: redirects (httpx does not follow them either by
default), compression (none is asked for), proxies (the stream client dials directly too),
HTTP/2, pipelining.

Why not httpx: its request, header and pool models and h11's state machine cost ~7x the CPU
of this client per call (``client/rest.py`` has the figures); shared by many users, its pool
rescans every connection for every queued request.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from loadtest.client.receive import receive
from loadtest.client.tcp import connect
from loadtest.client.tls import tls_context

#: Idle connections are dropped after this long: well under the 5 s that uvicorn and most
#: servers keep them, so a request never races the server closing its connection.
KEEPALIVE_EXPIRY_S = 2.0
#: The longest response head (status line and headers) read before giving up.
MAX_HEAD_BYTES = 65_536
_NO_BODY_STATUS = frozenset({204, 304})

Dial = Callable[[tuple[str, int], float], socket.socket]


class NoAnswer(Exception):
    """The request got no (whole) response. ``connected``: whether a connection was made,
    so whether the request may have reached the server. Never carries a header's value."""

    def __init__(self, message: str, connected: bool) -> None:
        self.connected = connected
        super().__init__(message)


@dataclass(slots=True)
class HttpResponse:
    """A whole response: status, reason, headers (names lowercased) and the body."""

    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    #: From just before the request was written (its connection dialled, if it needed one)
    #: to when the response head was read.
    latency_ns: int


@dataclass(slots=True, frozen=True)
class Origin:
    """Where a connection goes: scheme, host, port and the ``Host`` header's value."""

    secure: bool
    host: str
    port: int
    host_header: str
    #: A path prefix of the base URL (``https://host/coder``), "" when none.
    prefix: str

    @classmethod
    def parse(cls, url: str) -> Origin:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the URL must be http:// or https:// with a host")
        secure = parts.scheme == "https"
        default = 443 if secure else 80
        port = parts.port or default
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        return cls(
            secure,
            host,
            port,
            shown if port == default else f"{shown}:{port}",
            parts.path.rstrip("/"),
        )


def header_block(headers: dict[str, str]) -> bytes:
    """Headers as they go on the wire; a name or value with CR, LF or NUL is refused without
    echoing it (a token must not reach an error message)."""
    lines = []
    for name, value in headers.items():
        if any(c in name for c in "\r\n\0:") or any(c in value for c in "\r\n\0"):
            raise ValueError(f"header {name.splitlines()[0]!r} has a character HTTP forbids")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1")


class Connection:
    """One keep-alive connection to one origin, dialled on first use and again whenever the
    last one expired, was closed by the server, or failed."""

    def __init__(
        self,
        origin: Origin,
        timeout: float = 30.0,
        keepalive_expiry: float = KEEPALIVE_EXPIRY_S,
        dial: Dial | None = None,
    ) -> None:
        """``dial`` opens the TCP connection (tests hand in one end of a socketpair); by
        default ``tcp.connect``: the host's addresses (resolved once a while) dialled in turn."""
        self.origin = origin
        self.timeout = timeout
        self.keepalive_expiry = keepalive_expiry
        self._dial: Dial = dial or connect
        self._sock: socket.socket | None = None
        self._idle_since = 0.0
        self._buffer = b""
        #: Connections dialled (a test and the bench read it: reuse is the point).
        self.dialled = 0

    def close(self) -> None:
        sock, self._sock = self._sock, None
        self._buffer = b""
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def request(
        self, method: str, target: str, head: bytes, body: bytes | None = None
    ) -> HttpResponse:
        """Send one request (``target``: path and query; ``head``: its extra header lines,
        from ``header_block``) and read its whole response; raises ``NoAnswer``."""
        origin = self.origin
        lines = [
            f"{method} {origin.prefix}{target} HTTP/1.1\r\nHost: {origin.host_header}\r\n".encode(),
            head,
        ]
        if body is not None:
            lines.append(b"Content-Length: %d\r\n\r\n" % len(body))
            lines.append(body)
        else:
            lines.append(b"\r\n")
        data = b"".join(lines)
        start = time.perf_counter_ns()
        _sweep(time.monotonic())
        sock = self._reusable()
        self._idle_since = -1.0  # in use: a sweep leaves it alone
        if sock is None:
            sock = self._connect()
        try:
            sock.sendall(data)
            status, reason, headers = self._head(sock, method)
            at = time.perf_counter_ns()
            content, keep = self._body(sock, method, status, headers)
        except OSError as exc:
            self.close()
            raise NoAnswer(_describe(exc), connected=True) from None
        except NoAnswer:
            self.close()
            raise
        if keep:
            self._idle_since = since = time.monotonic()
            heapq.heappush(_IDLE, (since + self.keepalive_expiry, next(_pushed), since, self))
        else:
            self.close()
        return HttpResponse(status, reason, headers, content, at - start)

    # ------------------------------------------------------------ the connection

    def _reusable(self) -> socket.socket | None:
        """The open connection if it may carry another request: not idle past its expiry,
        and not closed (or sent anything unasked) by the server while idle."""
        sock = self._sock
        if sock is None:
            return None
        if time.monotonic() - self._idle_since > self.keepalive_expiry or self._buffer:
            self.close()
            return None
        if _readable(sock):
            self.close()  # end of file (the server closed it) or bytes nobody asked for
            return None
        return sock

    def _connect(self) -> socket.socket:
        origin = self.origin
        try:
            sock = self._dial((origin.host, origin.port), self.timeout)
        except OSError as exc:
            raise NoAnswer(f"could not connect: {_describe(exc)}", connected=False) from None
        try:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(self.timeout)
            if origin.secure:
                sock = tls_context().wrap_socket(sock, server_hostname=origin.host)
        except OSError as exc:  # the TLS handshake failed: nothing was sent
            with contextlib.suppress(OSError):
                sock.close()
            raise NoAnswer(f"could not connect: {_describe(exc)}", connected=False) from None
        self.dialled += 1
        self._sock = sock
        self._buffer = b""
        return sock

    def _recv(self, sock: socket.socket) -> bytes:
        data = receive(sock)
        if not data:
            raise NoAnswer("the server closed the connection before the response ended", True)
        return data

    # ------------------------------------------------------------ the response

    def _head(self, sock: socket.socket, method: str) -> tuple[int, str, dict[str, str]]:
        """The final response's status, reason and headers (1xx answers skipped)."""
        while True:
            buffer = self._buffer
            end = buffer.find(b"\r\n\r\n")
            while end < 0:
                if len(buffer) > MAX_HEAD_BYTES:
                    raise NoAnswer("the response head is too long", True)
                try:
                    chunk = receive(sock)
                except OSError as exc:
                    raise NoAnswer(_describe(exc), True) from None
                if not chunk:
                    what = "before the response ended" if buffer else "without a response"
                    raise NoAnswer(f"the server closed the connection {what}", True)
                buffer += chunk
                end = buffer.find(b"\r\n\r\n", max(0, len(buffer) - len(chunk) - 3))
            head, self._buffer = buffer[:end], buffer[end + 4 :]
            status, reason, headers = _parse_head(head)
            if 100 <= status < 200 and status != 101:
                continue  # an interim answer (100 Continue, 103 Early Hints)
            return status, reason, headers

    def _body(
        self, sock: socket.socket, method: str, status: int, headers: dict[str, str]
    ) -> tuple[bytes, bool]:
        """The body and whether the connection may carry another request."""
        keep = _keep_alive(headers)
        if method == "HEAD" or status in _NO_BODY_STATUS or status < 200:
            return b"", keep and status != 101
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._chunked(sock), keep
        length = headers.get("content-length")
        if length is not None:
            try:
                size = int(length.split(",")[0])
            except ValueError:
                raise NoAnswer("the response's Content-Length is not a number", True) from None
            if size < 0:
                raise NoAnswer("the response's Content-Length is negative", True)
            return self._exactly(sock, size), keep
        # Neither: the body runs to the end of the connection.
        parts = [self._buffer]
        self._buffer = b""
        while True:
            chunk = receive(sock)
            if not chunk:
                return b"".join(parts), False
            parts.append(chunk)

    def _exactly(self, sock: socket.socket, size: int) -> bytes:
        buffer = self._buffer
        if len(buffer) < size:
            parts, have = [buffer], len(buffer)
            while have < size:
                chunk = self._recv(sock)
                parts.append(chunk)
                have += len(chunk)
            buffer = b"".join(parts)
        self._buffer = buffer[size:]
        return buffer[:size]

    def _line(self, sock: socket.socket) -> bytes:
        buffer = self._buffer
        end = buffer.find(b"\r\n")
        while end < 0:
            if len(buffer) > MAX_HEAD_BYTES:
                raise NoAnswer("a chunk's header line is too long", True)
            buffer += self._recv(sock)
            end = buffer.find(b"\r\n")
        self._buffer = buffer[end + 2 :]
        return buffer[:end]

    def _chunked(self, sock: socket.socket) -> bytes:
        parts: list[bytes] = []
        while True:
            line = self._line(sock)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise NoAnswer("a chunk's size is not a hexadecimal number", True) from None
            if size == 0:
                while self._line(sock):  # trailers, up to the blank line
                    pass
                return b"".join(parts)
            parts.append(self._exactly(sock, size))
            if self._exactly(sock, 2) != b"\r\n":
                raise NoAnswer("a chunk does not end with CRLF", True)


class Pool:
    """One user's connections to one origin: one while it makes one call at a time, another
    for each call that overlaps (greenlets sharing the user's client), kept for the next."""

    def __init__(
        self,
        origin: Origin,
        timeout: float = 30.0,
        keepalive_expiry: float = KEEPALIVE_EXPIRY_S,
        dial: Dial | None = None,
    ) -> None:
        self.origin = origin
        self._make = lambda: Connection(origin, timeout, keepalive_expiry, dial)
        self._free: list[Connection] = []
        self._all: list[Connection] = []

    @property
    def dialled(self) -> int:
        return sum(connection.dialled for connection in self._all)

    def request(
        self, method: str, target: str, head: bytes, body: bytes | None = None
    ) -> HttpResponse:
        """``Connection.request`` on a connection no other call is using."""
        free = self._free
        if free:
            connection = free.pop()  # the most recent: the likeliest to be open still
        else:
            connection = self._make()
            self._all.append(connection)
        try:
            return connection.request(method, target, head, body)
        finally:
            free.append(connection)

    def close(self) -> None:
        for connection in self._all:
            connection.close()


#: Idle connections by when they expire, soonest first. Any request closes those idle past
#: their expiry (``_sweep``), so that a user who thinks for a minute between two turns does
#: not hold a connection the server already closed (a descriptor each, until its next call).
_IDLE: list[tuple[float, int, float, Connection]] = []
_pushed = itertools.count()


def _sweep(now: float) -> None:
    while _IDLE and _IDLE[0][0] < now:
        try:
            entry = heapq.heappop(_IDLE)
        except IndexError:  # another thread took the last one
            return
        deadline, _, since, connection = entry
        if deadline >= now:  # another thread took the expired one first
            heapq.heappush(_IDLE, entry)
            return
        if connection._idle_since == since:  # idle ever since: neither in use nor reused
            connection.close()


def _parse_head(head: bytes) -> tuple[int, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/"):
        raise NoAnswer("the response does not start with an HTTP status line", True)
    try:
        status = int(status_line[1])
    except ValueError:
        raise NoAnswer("the response's status is not a number", True) from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise NoAnswer("a response header line has no colon", True)
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    if status_line[0] == "HTTP/1.0" and "keep-alive" not in headers.get("connection", "").lower():
        headers["connection"] = "close"  # HTTP/1.0 keeps a connection only when it says so
    return status, status_line[2] if len(status_line) > 2 else "", headers


def _keep_alive(headers: dict[str, str]) -> bool:
    return "close" not in headers.get("connection", "").lower()


def _readable(sock: socket.socket) -> bool:
    """Whether an idle connection has something to read (the server's end of file, most
    likely), without waiting: a peek on a plain socket, a zero-timeout select on TLS."""
    timeout = sock.gettimeout()
    try:
        sock.settimeout(0.0)
        if hasattr(sock, "pending"):  # TLS: the record layer may hold bytes already
            return bool(sock.pending()) or bool(select.select([sock], [], [], 0)[0])
        try:
            sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        return True  # end of file (b"") or bytes: either way not a clean idle connection
    except OSError:
        return True
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(timeout)


def _describe(exc: OSError) -> str:
    """A failure as the error says it (``ConnectionRefusedError: [Errno 111] ...``)."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"
