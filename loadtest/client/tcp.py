"""TCP connections for the REST and stream clients, an origin's addresses looked up once a while.

Under gevent every ``getaddrinfo`` goes through the resolver's thread pool, an IP literal's
too: at a few hundred new connections a second (``chatload run -u 2000`` here) that trip was
about a tenth of the worker's CPU (py-spy: the pool's queue and condition variable). An IP
literal needs no lookup; a name's answer is kept ``RESOLVE_TTL_S``, so a changed record (a
load balancer's) is followed within that, as a browser's cache would.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from typing import Any, Final

#: How long a name's addresses are used before they are looked up again.
RESOLVE_TTL_S: Final = 30.0

#: One address to try: (family, the address ``socket.connect`` takes).
Address = tuple[int, tuple[Any, ...]]

_resolved: dict[tuple[str, int], tuple[float, list[Address]]] = {}


def addresses(host: str, port: int) -> list[Address]:
    """Where ``host:port`` is: the literal itself, or the name's (cached) lookup."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        if literal.version == 6:
            return [(socket.AF_INET6, (str(literal), port, 0, 0))]
        return [(socket.AF_INET, (str(literal), port))]
    key = (host, port)
    now = time.monotonic()
    kept = _resolved.get(key)
    if kept is not None and now < kept[0]:
        return kept[1]
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    listed: list[Address] = [(family, address) for family, _, _, _, address in found]
    _resolved[key] = (now + RESOLVE_TTL_S, listed)
    return listed


def connect(address: tuple[str, int], timeout: float) -> socket.socket:
    """A TCP connection to ``(host, port)``, each of its addresses tried in turn as
    ``socket.create_connection`` does; when none answers, the name is looked up anew next
    time."""
    host, port = address
    failure: OSError | None = None
    for family, where in addresses(host, port):
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.settimeout(timeout)
            sock.connect(where)
            return sock
        except OSError as exc:
            sock.close()
            failure = exc
    _resolved.pop((host, port), None)
    raise failure or OSError(f"{host} resolved to no address")
