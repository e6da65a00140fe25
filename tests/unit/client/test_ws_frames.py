"""The fast frame parser against websockets' own: the same server bytes, cut at every byte
boundary, must give the same payloads, the same replies (pongs, the close echo) and the same
end, whichever parser reads them. The server's frames are websockets' own serialisation."""

from __future__ import annotations

import socket
from collections.abc import Iterable

import pytest
from websockets.frames import Close, Frame, Opcode
from websockets.server import ServerProtocol

from loadtest.client.ws import Closed, WebSocketStream, frame_end


class FakeSocket:
    """Replies to the upgrade with websockets' server, then hands out ``chunks`` one per
    ``recv_into``; what the client sends after the upgrade is kept in ``sent``."""

    family = socket.AF_UNIX

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.server = ServerProtocol()
        self.chunks = list(chunks)
        self.sent = b""
        self.upgraded = False
        self.closed = False

    def setsockopt(self, *args: object) -> None:
        pass

    def settimeout(self, timeout: float | None) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def sendall(self, data: bytes) -> None:
        if self.upgraded:
            self.sent += data
            return
        self.server.receive_data(data)
        request = self.server.events_received()[0]
        self.server.send_response(self.server.accept(request))  # type: ignore[arg-type]
        response = b"".join(self.server.data_to_send())
        self.upgraded = True
        # The response and the first chunk arrive in one read, as they can on a real socket.
        first = self.chunks.pop(0) if self.chunks else b""
        self.chunks.insert(0, response + first)

    def recv_into(self, buffer: memoryview) -> int:
        if self.closed:
            raise OSError("closed")
        chunk = self.chunks.pop(0) if self.chunks else b""
        if len(chunk) > len(buffer):  # the rest waits for the next read, as on a socket
            self.chunks.insert(0, chunk[len(buffer) :])
            chunk = chunk[: len(buffer)]
        buffer[: len(chunk)] = chunk
        return len(chunk)


def server_frames(sock: FakeSocket) -> list[Frame]:
    """The frames the client sent, as the server that accepted it parses them."""
    sock.server.receive_data(sock.sent)
    return [e for e in sock.server.events_received() if isinstance(e, Frame)]


def read(chunks: list[bytes], fast: bool) -> tuple[list[bytes], Closed | None, list[Frame]]:
    sock = FakeSocket(chunks)
    stream = WebSocketStream("ws://coder.test/s", {}, dial=lambda *_: sock, fast_frames=fast)  # type: ignore[arg-type]
    stream.connect()
    payloads = [payload for payload, _t in stream.frames()]
    return payloads, stream.closed, server_frames(sock)


def frame(opcode: Opcode, data: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin).serialize(mask=False)


def text(n: int, fill: bytes = b"x") -> bytes:
    return frame(Opcode.TEXT, (fill * n)[:n])


CLOSE = frame(Opcode.CLOSE, Close(1000, "done").serialize())
SMALL = (
    text(0)
    + text(1)
    + frame(Opcode.PING, b"hi")
    + text(125)
    + frame(Opcode.BINARY, b"\x00\x01")
    + frame(Opcode.TEXT, b"[1,", fin=False)
    + frame(Opcode.PING, b"mid")
    + frame(Opcode.CONT, b"2]")
    + text(126)
    + text(300)
    + CLOSE
    + text(5)  # after the close: discarded
)


def check_same(chunks: list[bytes]) -> tuple[list[bytes], Closed | None, list[Frame]]:
    fast = read(list(chunks), fast=True)
    slow = read(list(chunks), fast=False)
    assert fast == slow
    return fast


def test_small_frames_at_every_byte_boundary() -> None:
    expected = [b"", b"x", b"x" * 125, b"[1,2]", b"x" * 126, b"x" * 300]
    for cut in range(len(SMALL) + 1):
        payloads, closed, replies = check_same([SMALL[:cut], SMALL[cut:]])
        assert payloads == expected, cut
        assert closed == Closed(1000, "done")
        assert [(f.opcode, f.data) for f in replies] == [
            (Opcode.PONG, b"hi"),
            (Opcode.PONG, b"mid"),
            (Opcode.CLOSE, Close(1000, "done").serialize()),
        ]


def test_one_byte_per_read() -> None:
    payloads, closed, _ = check_same([SMALL[i : i + 1] for i in range(len(SMALL))])
    assert len(payloads) == 6 and closed == Closed(1000, "done")


@pytest.mark.parametrize("length", [125, 126, 127, 65535, 65536, 300_000])
def test_length_encodings_split_around_header_and_end(length: int) -> None:
    blob = text(length, b"ab") + frame(Opcode.PING, b"p") + text(3) + CLOSE
    body_end = len(text(length))
    cuts = set(range(0, 16)) | set(range(body_end - 4, body_end + 12)) | {len(blob) // 2}
    for cut in sorted(c for c in cuts if c <= len(blob)):
        payloads, closed, replies = check_same([blob[:cut], blob[cut:]])
        assert [len(p) for p in payloads] == [length, 3], cut
        assert closed == Closed(1000, "done")
        assert replies[0].opcode is Opcode.PONG


def test_lost_connection_mid_frame_is_1006_on_both_paths() -> None:
    blob = text(10) + text(200)
    payloads, closed, _ = check_same([blob[:-5]])
    assert payloads == [b"x" * 10]
    assert closed is not None and closed.code == 1006


@pytest.mark.parametrize(
    "bad",
    [
        Frame(Opcode.TEXT, b"masked").serialize(mask=True),
        bytes([0x81 | 0x40]) + frame(Opcode.TEXT, b"rsv")[1:],  # RSV1: no extension agreed
        frame(Opcode.CONT, b"no message to continue"),
        frame(Opcode.TEXT, b"[", fin=False) + text(2),  # a new message inside a fragmented one
        bytes([0x83, 0x00]),  # a reserved opcode
    ],
)
def test_protocol_errors_fail_as_websockets_fails_them(bad: bytes) -> None:
    blob = text(4) + bad + text(6) + CLOSE
    for cut in range(len(blob) + 1):
        payloads, closed, replies = check_same([blob[:cut], blob[cut:]])
        assert payloads[0] == b"xxxx" and b"xxxxxx" not in payloads
        assert closed is not None and not closed.normal
        assert replies[-1].opcode is Opcode.CLOSE
        assert Close.parse(replies[-1].data).code == 1002


def test_frame_end_reads_every_length_encoding() -> None:
    for length in (0, 125, 126, 65535, 65536):
        data = text(length)
        assert frame_end(data, 0) == len(data)
        assert frame_end(data[:1], 0) == 2
    masked = Frame(Opcode.TEXT, b"abc").serialize(mask=True)
    assert frame_end(masked, 0) == len(masked)
