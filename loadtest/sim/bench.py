"""The simulator's capacity: frames and events per second it delivers to one client.

The simulator runs as a subprocess pinned to one core; the reader is a raw socket that
parses only websocket frame headers (server frames are unmasked), so it is never the
bottleneck. Event counts come from the server's own exact counters.
"""

from __future__ import annotations

import base64
import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from typing import Final

import httpx

Row = tuple[str, float, str]

_TOKEN: Final = "chatload-bench-token"
_FULL_SPEED: Final = (
    "--ttft",
    "0",
    "--part-gap",
    "0",
    "--time-scale",
    "0",
    "--rate-limit",
    "-1",
    "--parts-per-turn",
    "200",
)


def _cores() -> tuple[int, int | None]:
    """(core for the server, another core for the reader or None)."""
    cores = sorted(os.sched_getaffinity(0))
    return cores[-1], (cores[0] if len(cores) > 1 else None)


def _start(core: int) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "loadtest.cli", "sim", "--port", "0", "--era", "a"]
    process = subprocess.Popen(
        [*command, "--token", _TOKEN, *_FULL_SPEED],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {core}),
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 20)
    line = process.stdout.readline() if ready else ""
    if "listening on" not in line:
        process.kill()
        raise RuntimeError(f"simulator did not start: {line!r}")
    return process, line.split()[4]


def _read(url: str, path: str, seconds: float) -> tuple[int, int, float]:
    """Read text frames from ``path`` for ``seconds`` (or until closed): frames, payload
    bytes, elapsed seconds."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        buffer += sock.recv(65536)
    head, _, buffer = buffer.partition(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"upgrade refused: {head[:80]!r}")
    frames = payload = 0
    start = time.perf_counter()
    deadline = start + seconds
    view = bytearray(buffer)
    closed = False
    while not closed and time.perf_counter() < deadline:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        view += chunk
        offset, size = 0, len(view)
        while size - offset >= 2:
            opcode, length = view[offset] & 0x0F, view[offset + 1] & 0x7F
            header = 2
            if length == 126:
                if size - offset < 4:
                    break
                length, header = int.from_bytes(view[offset + 2 : offset + 4]), 4
            elif length == 127:
                if size - offset < 10:
                    break
                length, header = int.from_bytes(view[offset + 2 : offset + 10]), 10
            if size - offset < header + length:
                break
            offset += header + length
            if opcode == 1:
                frames += 1
                payload += length
            elif opcode == 8:
                closed = True
                break
        del view[:offset]
    elapsed = time.perf_counter() - start
    sock.close()
    return frames, payload, elapsed


def _measure(url: str, name: str, path: str, seconds: float) -> list[Row]:
    with httpx.Client(base_url=url, timeout=10) as client:
        client.post("/__sim/reset")
        frames, payload, elapsed = _read(url, path, seconds)
        time.sleep(0.2)
        totals = client.get("/__sim/counts").json()["totals"]
    per_frame = totals["events"] / totals["frames"] if totals["frames"] else 0.0
    return [
        (f"sim {name} frames/s", frames / elapsed, "frames/s"),
        (f"sim {name} events/s", frames * per_frame / elapsed, "events/s"),
        (f"sim {name} MB/s", payload / elapsed / 1e6, "MB/s"),
    ]


def run_sim_bench(seconds: float = 3.0) -> list[tuple[str, float, str]]:
    """Frames/s and events/s the simulator (one core) delivers to one fast reader: the
    firehose at batch 1 and 20, and the real turn generator at full speed."""
    server_core, reader_core = _cores()
    process, url = _start(server_core)
    previous = os.sched_getaffinity(0)
    if reader_core is not None:
        os.sched_setaffinity(0, {reader_core})
    try:
        rows: list[Row] = []
        for batch in (1, 20):
            path = f"/__sim/firehose?frames=100000000&batch={batch}"
            rows += _measure(url, f"firehose batch={batch}", path, seconds)
        rows += _measure(url, "turn generator", "/__sim/turnhose?turns=10000000", seconds)
        return rows
    finally:
        os.sched_setaffinity(0, previous)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)


if __name__ == "__main__":
    for row_name, value, unit in run_sim_bench():
        print(f"{row_name:40s} {value:14,.0f} {unit}")
