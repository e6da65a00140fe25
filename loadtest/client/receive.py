"""Socket reads through one buffer per OS thread, each read's bytes copied out at their size.

``sock.recv(262_144)`` allocates the whole 256 KB for every read and shrinks it to what came
(a few hundred bytes, mostly). Once glibc has seen such a block freed it serves the next from
its heap, and the small kept remainders pin the heap apart: a worker's resident memory grew
with its reads (``chatload run -u 1000``: 168 -> 242 MB from the first minute to the fifth,
~2 KB a turn), and stayed flat with the 256 KB blocks kept out of the heap. Reading into a
buffer that is reused, and copying out only what came, allocates what is kept and no more.

The buffer is per OS thread (``get_native_id``, which gevent leaves alone: a greenlet-local
one would be a buffer per stream). Greenlets of one thread share it safely: nothing switches
between a read filling it and its bytes being copied out.
"""

from __future__ import annotations

import socket
from threading import get_native_id
from typing import Final

#: The most one read takes: a burst of frames in one call when the socket has them.
RECV_BYTES: Final = 262_144

#: Threads whose buffers are kept; past it they are all let go (a thread that read once and
#: ended must not hold 256 KB for good; one still reading makes a new one).
MAX_THREADS: Final = 16

_buffers: dict[int, memoryview] = {}


def receive(sock: socket.socket) -> bytes:
    """What ``sock.recv(RECV_BYTES)`` returns, without allocating ``RECV_BYTES`` for it."""
    thread = get_native_id()
    view = _buffers.get(thread)
    if view is None:
        if len(_buffers) >= MAX_THREADS:
            _buffers.clear()
        view = _buffers[thread] = memoryview(bytearray(RECV_BYTES))
    n = sock.recv_into(view)
    return view[:n].tobytes()
