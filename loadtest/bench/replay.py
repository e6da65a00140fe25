"""A websocket server that only replays: the simulator's own frame, sent back to back.

The simulator sends one frame per ``send`` (about 300 k one-event frames a second on one
core), slower than the reader it is to measure, so a reader that waits on it pays for waiting
and its figure follows the simulator's pace. This server takes a frame the simulator sent,
serialises it once as websockets does (unmasked, no extension) and writes it thousands of
frames per ``sendall``: the reader always finds a full socket, and what it costs per frame is
its own. It answers the upgrade properly, ends with a close 1000 and waits for the echo.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import threading
from urllib.parse import parse_qs, urlsplit

from websockets.frames import Close, Frame, Opcode

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CHUNK_BYTES = 1 << 20


class Replay:
    """Serves ``/replay?batch=B&frames=N``: N copies of the frame given for batch B."""

    def __init__(self, payloads: dict[int, bytes]) -> None:
        self._frames = {b: Frame(Opcode.TEXT, p).serialize(mask=False) for b, p in payloads.items()}
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, batch: int, frames: int) -> str:
        return f"ws://127.0.0.1:{self.port}/replay?batch={batch}&frames={frames}"

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            request = b""
            while b"\r\n\r\n" not in request:
                data = conn.recv(65536)
                if not data:
                    return
                request += data
            head = request.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            query = parse_qs(urlsplit(head[0].split(" ")[1]).query)
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])
            }
            key = headers["sec-websocket-key"]
            accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept.encode() + b"\r\n\r\n"
            )
            frame = self._frames[int(query["batch"][0])]
            count = int(query["frames"][0])
            per_chunk = max(1, CHUNK_BYTES // len(frame))
            chunk = frame * per_chunk
            full, rest = divmod(count, per_chunk)
            for _ in range(full):
                conn.sendall(chunk)
            conn.sendall(frame * rest)
            conn.sendall(Frame(Opcode.CLOSE, Close(1000, "").serialize()).serialize(mask=False))
            conn.settimeout(10)
            conn.recv(65536)  # the client's close echo (or its end): then the server closes
