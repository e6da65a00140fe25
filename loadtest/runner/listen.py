"""Where a run's own servers listen (``--prometheus``, ``--web``): parsed, and checked free."""

from __future__ import annotations

import socket


def parse_address(flag: str, address: str, example: str) -> tuple[str, int]:
    """``HOST:PORT``, or ``:PORT`` for every interface; a ValueError naming ``flag``."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{flag} {address!r}: expected HOST:PORT, e.g. {example}")
    return host or "0.0.0.0", int(port)


def check_free(host: str, port: int) -> None:
    """Refuse an address that cannot be served, before the run starts (OSError)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
