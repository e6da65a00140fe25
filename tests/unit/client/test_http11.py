"""The HTTP/1.1 client against a real scripted server on 127.0.0.1: keep-alive, chunked,
Content-Length and close-delimited bodies, a connection the server closed while idle, a reset
mid-response (sent again when that is safe, raised as today when not), Coder's error bodies."""

from __future__ import annotations

import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from loadtest.client import tls
from loadtest.client.http11 import Connection, NoAnswer, Origin, header_block
from loadtest.client.rest import ChatClient, RestError
from loadtest.protocol.eras import Era

#: What the server does after a request: send bytes, close (FIN), reset (RST), or wait.
CLOSE, RESET = "close", "reset"
Action = bytes | str | float


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    connection: int


@dataclass
class Server:
    """Answers each request with ``answer(request)``'s actions, one thread per connection."""

    answer: Callable[[Request], list[Action]]
    #: Serve HTTPS with this context.
    tls: ssl.SSLContext | None = None
    requests: list[Request] = field(default_factory=list)
    #: Set when a connection's client went away (EOF or reset while the server waited).
    client_left: threading.Event = field(default_factory=threading.Event)
    #: Set when the server closed a connection itself (after CLOSE or RESET).
    hung_up: threading.Event = field(default_factory=threading.Event)
    connections: int = 0
    #: Each connection's client port, in the order they came.
    peers: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://localhost:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, peer = self.listener.accept()
            except OSError:
                return
            self.peers.append(peer[1])
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, self.connections), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        conn.settimeout(10)
        if self.tls is not None:
            conn = self.tls.wrap_socket(conn, server_side=True)
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    try:
                        chunk = conn.recv(65536)
                    except OSError:
                        chunk = b""
                    if not chunk:
                        self.client_left.set()
                        return
                    buffer += chunk
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ")
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                size = int(headers.get("content-length", "0"))
                while len(buffer) < size:
                    buffer += conn.recv(65536)
                body, buffer = buffer[:size], buffer[size:]
                request = Request(method, target, headers, body, number)
                self.requests.append(request)
                for action in self.answer(request):
                    if isinstance(action, bytes):
                        conn.sendall(action)
                    elif isinstance(action, float):
                        time.sleep(action)
                    elif action == CLOSE:
                        conn.close()
                        self.hung_up.set()
                        return
                    elif action == RESET:
                        conn.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                        conn.close()
                        self.hung_up.set()
                        return

    def close(self) -> None:
        self.listener.close()


def client_saw_the_close(port: int, timeout: float = 10.0) -> bool:
    """Wait until the client's socket on ``port`` has the server's FIN (state CLOSE_WAIT in
    /proc/net/tcp), not for a fixed time: on a busy machine loopback delivery can lag."""
    table = Path("/proc/net/tcp")
    if not table.exists():  # not Linux: no way to watch, give it a moment
        time.sleep(0.2)
        return True
    local = f"0100007F:{port:04X}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = (line.split() for line in table.read_text().splitlines()[1:])
        if any(row[1] == local and row[3] == "08" for row in rows):
            return True
        time.sleep(0.005)
    return False


def response(status: int, body: bytes = b"", *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status} Whatever", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def json_200(request: Request) -> list[Action]:
    return [response(200, orjson.dumps({"path": request.target}))]


@pytest.fixture
def serve() -> object:
    servers: list[Server] = []

    def start(
        answer: Callable[[Request], list[Action]] = json_200, tls: ssl.SSLContext | None = None
    ) -> Server:
        servers.append(Server(answer, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def connection(server: Server, **kw: float) -> Connection:
    return Connection(Origin.parse(server.url), **kw)


def test_requests_share_one_keep_alive_connection(serve: Callable[..., Server]) -> None:
    server = serve()
    conn = connection(server)
    head = header_block({"Accept": "application/json"})
    for path in ("/a", "/b?x=1", "/c"):
        answer = conn.request("GET", path, head)
        assert answer.status == 200 and orjson.loads(answer.body) == {"path": path}
        assert answer.latency_ns > 0
    assert conn.dialled == 1 and server.connections == 1
    assert server.requests[0].headers["host"] == server.url.removeprefix("http://")
    assert server.requests[0].headers["accept"] == "application/json"


def test_a_post_goes_out_with_its_body_and_length(serve: Callable[..., Server]) -> None:
    server = serve(lambda r: [response(201, r.body)])
    answer = connection(server).request(
        "POST", "/chats", b"Content-Type: application/json\r\n", b'{"a":1}'
    )
    assert (answer.status, answer.body) == (201, b'{"a":1}')
    assert server.requests[0].headers["content-length"] == "7"


def test_chunked_body_split_anywhere_is_put_together(serve: Callable[..., Server]) -> None:
    wire = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n1\r\n,\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
    )
    # Byte by byte, with pauses, so every boundary falls between two reads.
    server = serve(lambda r: [part for b in wire for part in (bytes([b]), 0.0005)])
    conn = connection(server)
    assert conn.request("GET", "/", b"").body == b"hello, world"
    assert conn.request("GET", "/", b"").body == b"hello, world"  # the connection is reusable
    assert conn.dialled == 1


def test_a_body_without_length_runs_to_the_end_of_the_connection(
    serve: Callable[..., Server],
) -> None:
    server = serve(lambda r: [b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it", CLOSE])
    conn = connection(server)
    assert conn.request("GET", "/", b"").body == b"all of it"
    assert conn.request("GET", "/", b"").body == b"all of it"
    assert conn.dialled == 2 and server.connections == 2


def test_interim_answers_are_skipped_and_bodyless_statuses_read_nothing(
    serve: Callable[..., Server],
) -> None:
    server = serve(
        lambda r: (
            [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 204 No Content\r\n\r\n"]
            if r.target == "/204"
            else [response(200, b"ok")]
        )
    )
    conn = connection(server)
    assert conn.request("DELETE", "/204", b"").status == 204
    assert conn.request("GET", "/", b"").body == b"ok"
    assert conn.dialled == 1


def test_a_connection_the_server_closed_while_idle_is_not_used_again(
    serve: Callable[..., Server],
) -> None:
    # The server answers and then closes, saying nothing: the next POST must not be lost
    # on the dead connection (a POST is never sent twice, so it must go out on a new one).
    server = serve(lambda r: [response(200, b"ok"), CLOSE])
    conn = connection(server)
    assert conn.request("POST", "/1", b"", b"{}").body == b"ok"
    assert server.hung_up.wait(5)
    assert client_saw_the_close(server.peers[0])
    assert conn.request("POST", "/2", b"", b"{}").body == b"ok"
    assert conn.dialled == 2 and [r.target for r in server.requests] == ["/1", "/2"]


def test_an_idle_connection_expires_and_is_closed_by_the_next_request(
    serve: Callable[..., Server],
) -> None:
    server = serve()
    first, second = connection(server, keepalive_expiry=0.05), connection(server)
    first.request("GET", "/", b"")
    time.sleep(0.1)
    second.request("GET", "/", b"")  # sweeps: the first user's idle connection is closed
    assert server.client_left.wait(5)
    first.request("GET", "/", b"")
    assert first.dialled == 2


def test_a_reset_mid_response_is_no_answer(serve: Callable[..., Server]) -> None:
    server = serve(lambda r: [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart", RESET])
    with pytest.raises(NoAnswer) as failed:
        connection(server).request("GET", "/", b"")
    assert failed.value.connected


def test_a_server_that_never_answers_times_out(serve: Callable[..., Server]) -> None:
    server = serve(lambda r: [2.0])
    with pytest.raises(NoAnswer, match="timed out"):
        connection(server, timeout=0.2).request("GET", "/", b"")


def test_a_header_value_with_a_line_break_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError) as refused:
        header_block({"Coder-Session-Token": "secret\r\nX-Evil: 1"})
    assert "secret" not in str(refused.value) and "Coder-Session-Token" in str(refused.value)


# ------------------------------------------------------------ through ChatClient


def test_the_rest_client_keeps_one_connection_and_sends_its_headers(
    serve: Callable[..., Server],
) -> None:
    server = serve(lambda r: [response(200, b"[]")])
    client = ChatClient(server.url + "/", "tok-123", Era.D, bypass_ratelimit=True)
    assert client.list_chats() == []
    assert client.list_chats() == []
    assert server.connections == 1
    headers = server.requests[0].headers
    assert headers["coder-session-token"] == "tok-123"
    assert headers["x-coder-bypass-ratelimit"] == "true"
    assert server.requests[0].target == "/api/v2/chats"


def test_a_reset_get_is_sent_once_more_and_a_reset_post_raises(
    serve: Callable[..., Server],
) -> None:
    def flaky(request: Request) -> list[Action]:
        if len(server.requests) % 2:  # every first attempt of a pair
            return [b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{", RESET]
        return [response(200, b"[]")]

    server = serve(flaky)
    reported: list[tuple[str, int | None]] = []
    client = ChatClient(
        server.url,
        "secret-token",
        Era.D,
        on_request=lambda name, method, ns, size, error: reported.append(
            (name, error.status if error else 200)
        ),
    )
    assert client.list_chats() == []
    assert [r.method for r in server.requests] == ["GET", "GET"]
    with pytest.raises(RestError) as failed:
        client.post_message("c0ffee00-0000-4000-8000-000000000001", "hello")
    assert [r.method for r in server.requests] == ["GET", "GET", "POST"]
    assert failed.value.kind == "connection" and failed.value.status is None
    assert "secret-token" not in str(failed.value)
    assert reported == [("list_chats", 200), ("create_message", None)]


def test_a_refused_connection_is_a_connection_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    client = ChatClient(f"http://127.0.0.1:{port}", "secret-token", Era.D)
    with pytest.raises(RestError) as failed:
        client.list_chats()
    assert failed.value.kind == "connection"
    assert "refused" in failed.value.message.lower()
    assert "secret-token" not in str(failed.value)


@pytest.mark.parametrize(
    ("status", "body", "message", "detail"),
    [
        (
            400,
            b'{"message":"Invalid request.","detail":"bad uuid"}',
            "Invalid request.",
            "bad uuid",
        ),
        (429, b'{"message":"Message queue is full."}', "Message queue is full.", ""),
        (502, b"<html>bad gateway</html>", "<html>bad gateway</html>", ""),
        (503, b"", "Whatever", ""),
    ],
)
def test_error_statuses_carry_coders_message(
    serve: Callable[..., Server], status: int, body: bytes, message: str, detail: str
) -> None:
    server = serve(lambda r: [response(status, body)])
    client = ChatClient(server.url, "t", Era.D)
    with pytest.raises(RestError) as failed:
        client.list_chats()
    assert (failed.value.status, failed.value.message, failed.value.detail) == (
        status,
        message,
        detail,
    )
    with pytest.raises(RestError):  # the client, and its connection, stay usable
        client.list_chats()
    assert server.connections == 1


def test_a_base_url_path_prefix_and_query_reach_the_server(serve: Callable[..., Server]) -> None:
    server = serve(lambda r: [response(200, b'{"messages":[],"has_more":false}')])
    client = ChatClient(server.url + "/coder", "t", Era.D)
    assert client.message_ids("c1") == []
    assert server.requests[0].target == ("/coder/api/v2/chats/c1/messages?after_id=0&limit=200")


def test_a_url_that_is_not_http_fails_each_call_as_unreachable() -> None:
    client = ChatClient("ftp://example.test", "t", Era.D)
    with pytest.raises(RestError) as failed:
        client.list_chats()
    assert failed.value.kind == "connection"


def test_calls_that_overlap_on_one_client_each_get_a_connection(
    serve: Callable[..., Server],
) -> None:
    """Greenlets may share a user's client (open-loop arrivals, a driver's tabs)."""
    server = serve(lambda r: [0.2, response(200, b"[]")])
    client = ChatClient(server.url, "t", Era.D)
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(client.list_chats())) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [[], [], []]
    assert server.connections == 3
    client.list_chats()  # afterwards, one of them is used again
    assert server.connections == 3


@pytest.fixture
def https(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ssl.SSLContext]:
    """A server context for ``localhost`` whose self-signed certificate the process's one
    TLS context trusts (``SSL_CERT_FILE``, as a user would point chatload at a private CA)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    tls.tls_context.cache_clear()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    yield context
    tls.tls_context.cache_clear()


def test_https_keeps_its_connection_and_notices_the_server_closing_it(
    serve: Callable[..., Server], https: ssl.SSLContext
) -> None:
    closing = [False]
    server = serve(lambda r: [response(200, b"[]"), *([CLOSE] if closing[0] else [])], https)
    client = ChatClient(server.url, "t", Era.D)
    assert client.list_chats() == [] and client.list_chats() == []
    assert server.connections == 1
    closing[0] = True
    client.list_chats()
    assert server.hung_up.wait(5)
    assert client_saw_the_close(server.peers[0])
    client.call("create_message", "POST", "/api/experimental/chats/c1/messages", {})
    # A POST is never sent twice: it went out on a new connection, not the closed one.
    assert server.connections == 2
