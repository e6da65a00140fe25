"""``serve.bind``: the simulator's and the mock LLM's listening socket."""

from __future__ import annotations

import asyncio
import socket

from loadtest.serve import bind


def test_accepted_connections_have_nagle_off() -> None:
    """asyncio turns Nagle off only on sockets whose protocol says TCP; with it on, a
    response's body waited 40 ms for the client's delayed ACK of its headers."""
    listener = bind("127.0.0.1", 0)
    nodelay: list[int] = []

    class Accepted(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            nodelay.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    async def accept_one() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Accepted, sock=listener)
        _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        for _ in range(500):
            if nodelay:
                break
            await asyncio.sleep(0.01)
        writer.close()
        server.close()

    asyncio.run(asyncio.wait_for(accept_one(), 10))
    assert len(nodelay) == 1 and nodelay[0] != 0
