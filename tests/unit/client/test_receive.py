"""Socket reads through a reused buffer: the bytes of each read, and only their size kept."""

from __future__ import annotations

import socket
import threading
import tracemalloc

from loadtest.client.receive import RECV_BYTES, receive


def test_each_read_is_what_came_however_long_the_one_before() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"x" * 5000)
        assert receive(b) == b"x" * 5000
        a.sendall(b"yz")  # shorter: nothing of the last read may trail it
        assert receive(b) == b"yz"
        a.close()
        assert receive(b) == b""  # the peer closed


def test_what_a_read_returned_stays_as_it_was_after_the_next() -> None:
    pairs = [socket.socketpair() for _ in range(2)]
    try:
        pairs[0][0].sendall(b"first")
        kept = receive(pairs[0][1])
        pairs[1][0].sendall(b"SECOND")
        assert receive(pairs[1][1]) == b"SECOND"
        assert kept == b"first" and isinstance(kept, bytes)
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_a_small_read_allocates_its_size_not_the_buffers() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"warm")
        receive(b)  # this thread's buffer, made once
        tracemalloc.start()
        try:
            for _ in range(200):
                a.sendall(b"m" * 300)
                assert receive(b) == b"m" * 300
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    # sock.recv(RECV_BYTES) allocates the whole of it each time: the heap fragmentation
    # that grew a worker's memory with its reads.
    assert peak < RECV_BYTES // 8


def test_threads_reading_at_once_each_get_their_own_bytes() -> None:
    def read_many(tag: bytes, errors: list[str]) -> None:
        a, b = socket.socketpair()
        with a, b:
            for i in range(300):
                message = tag * (1 + i % 50)
                a.sendall(message)
                got = receive(b)
                if got != message:
                    errors.append(f"{tag!r} read {got[:20]!r}")
                    return

    errors: list[str] = []
    threads = [threading.Thread(target=read_many, args=(t, errors)) for t in (b"a", b"b", b"c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == [] and not any(thread.is_alive() for thread in threads)
