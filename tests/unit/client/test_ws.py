"""The stream client against websockets' own server protocol, over a socketpair: the upgrade,
text frames whole and in fragments, pings answered, close codes, a refused upgrade."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from loadtest.client.ws import Closed, HandshakeError, WebSocketStream

#: What the far end does once it has read the upgrade request.
Script = Callable[[ServerProtocol, socket.socket, Request], None]
Dial = Callable[[tuple[str, int], float], socket.socket]


def flush(server: ServerProtocol, sock: socket.socket) -> None:
    for chunk in server.data_to_send():
        if chunk:
            sock.sendall(chunk)


def read_request(server: ServerProtocol, sock: socket.socket) -> Request:
    while True:
        server.receive_data(sock.recv(65536))
        for event in server.events_received():
            assert isinstance(event, Request)
            return event


def serve(script: Script) -> tuple[Dial, list[Request]]:
    """A dial function whose far end runs ``script`` with a server protocol in a thread."""
    seen: list[Request] = []

    def dial(_address: tuple[str, int], _timeout: float) -> socket.socket:
        ours, theirs = socket.socketpair()

        def run() -> None:
            server = ServerProtocol()
            with theirs:
                request = read_request(server, theirs)
                seen.append(request)
                script(server, theirs, request)

        threading.Thread(target=run, daemon=True).start()
        return ours

    return dial, seen


def read_until(server: ServerProtocol, sock: socket.socket, opcode: Opcode) -> Frame:
    """Read the client's frames until one of ``opcode`` arrives."""
    while True:
        server.receive_data(sock.recv(65536))
        for event in server.events_received():
            if isinstance(event, Frame) and event.opcode is opcode:
                return event


def accepting(then: Callable[[ServerProtocol, socket.socket], None]) -> Script:
    """Accept the upgrade, then ``then``; the socket closes when it returns."""

    def script(server: ServerProtocol, sock: socket.socket, request: Request) -> None:
        server.send_response(server.accept(request))
        then(server, sock)
        flush(server, sock)

    return script


def frames_of(stream: WebSocketStream) -> Iterator[bytes]:
    return (payload for payload, _t in stream.frames())


def test_upgrade_carries_the_headers_and_text_frames_come_whole() -> None:
    def push(server: ServerProtocol, sock: socket.socket) -> None:
        server.send_text(b'[{"type":"status"}]')
        server.send_text(b'[{"type":"message_part"},', fin=False)
        server.send_continuation(b'{"type":"message_part"}]', fin=True)
        server.send_binary(b"\x00ignored")
        server.send_close(1000, "done")

    dial, seen = serve(accepting(push))
    stream = WebSocketStream(
        "ws://coder.test/api/x/stream", {"Coder-Session-Token": "t"}, dial=dial
    )
    stream.connect()
    assert list(frames_of(stream)) == [
        b'[{"type":"status"}]',
        b'[{"type":"message_part"},{"type":"message_part"}]',
    ]
    assert stream.closed == Closed(1000, "done") and stream.closed.normal
    assert seen[0].path == "/api/x/stream" and seen[0].headers["Coder-Session-Token"] == "t"


def test_a_ping_is_answered_and_a_lost_connection_is_1006() -> None:
    pongs: list[Frame] = []

    def ping_then_vanish(server: ServerProtocol, sock: socket.socket) -> None:
        server.send_ping(b"are you there")
        flush(server, sock)
        pongs.append(read_until(server, sock, Opcode.PONG))
        server.send_text(b"[]")  # then the socket closes with no close frame

    dial, _ = serve(accepting(ping_then_vanish))
    stream = WebSocketStream("ws://coder.test/s", {}, dial=dial)
    stream.connect()
    assert list(frames_of(stream)) == [b"[]"]
    assert pongs[0].opcode is Opcode.PONG and pongs[0].data == b"are you there"
    assert stream.closed is not None and stream.closed.code == 1006 and not stream.closed.normal


def test_a_refused_upgrade_is_a_handshake_error_with_coders_body() -> None:
    def refuse(server: ServerProtocol, sock: socket.socket, request: Request) -> None:
        server.send_response(server.reject(404, '{"message":"Chat not found."}'))
        flush(server, sock)

    dial, _ = serve(refuse)
    stream = WebSocketStream("ws://coder.test/s", {}, dial=dial)
    with pytest.raises(HandshakeError) as refused:
        stream.connect()
    assert refused.value.status == 404 and b"Chat not found." in refused.value.body


def test_start_close_sends_a_close_frame_and_reads_until_the_echo() -> None:
    got_close: list[Close] = []

    def echo_close(server: ServerProtocol, sock: socket.socket) -> None:
        server.send_text(b'["before"]')
        flush(server, sock)
        got_close.append(Close.parse(read_until(server, sock, Opcode.CLOSE).data))
        # websockets echoes the close itself once it has received one

    dial, _ = serve(accepting(echo_close))
    stream = WebSocketStream("ws://coder.test/s", {}, dial=dial)
    stream.connect()
    stream.start_close()
    assert list(frames_of(stream)) == [b'["before"]']
    assert got_close[0].code == 1000 and stream.closed == Closed(1000, "")
