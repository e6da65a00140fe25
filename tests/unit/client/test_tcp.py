"""TCP dialling: IP literals are not looked up, names once a while, and a name none of whose
addresses answered is looked up anew."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from loadtest.client import tcp


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every getaddrinfo call, answered with 127.0.0.1 at the asked port."""
    asked: list[str] = []

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(tcp.socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(tcp, "_resolved", {})
    return asked


def test_an_ip_literal_is_its_own_address(lookups: list[str]) -> None:
    assert tcp.addresses("127.0.0.1", 80) == [(socket.AF_INET, ("127.0.0.1", 80))]
    assert tcp.addresses("[::1]", 443) == [(socket.AF_INET6, ("::1", 443, 0, 0))]
    assert lookups == []


def test_a_name_is_looked_up_once_per_ttl(
    lookups: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(tcp.time, "monotonic", lambda: now[0])
    first = tcp.addresses("coder.test", 8080)
    assert first == [(socket.AF_INET, ("127.0.0.1", 8080))]
    now[0] += tcp.RESOLVE_TTL_S - 1
    assert tcp.addresses("coder.test", 8080) == first
    assert lookups == ["coder.test"]
    now[0] += 2
    tcp.addresses("coder.test", 8080)
    assert lookups == ["coder.test", "coder.test"]


def test_connect_dials_the_name_and_forgets_it_when_nothing_answers(lookups: list[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with tcp.connect(("coder.test", port), 5.0) as sock:
            assert sock.getpeername() == ("127.0.0.1", port)
    with pytest.raises(OSError):
        tcp.connect(("coder.test", port), 5.0)  # the listener is gone: refused
    tcp.addresses("coder.test", port)
    assert lookups == ["coder.test", "coder.test"]  # looked up again after the failure
