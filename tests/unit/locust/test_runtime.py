"""Per-user costs are per process: thousands of users share one TLS context."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import pytest

from loadtest.client import tls
from loadtest.locust import runtime
from loadtest.protocol.eras import Era
from loadtest.scenario import Scenario


@pytest.fixture
def contexts_made(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[ssl.SSLContext]]:
    """Every SSLContext constructed while the test runs."""
    made: list[ssl.SSLContext] = []
    original = ssl.SSLContext.__new__

    def counting_new(cls: type[ssl.SSLContext], *args: Any, **kwargs: Any) -> ssl.SSLContext:
        context = original(cls, *args, **kwargs)
        made.append(context)
        return context

    monkeypatch.setattr(ssl.SSLContext, "__new__", counting_new)
    yield made


def https_runtime() -> runtime.Runtime:
    settings = runtime.RunSettings(
        scenario=Scenario(), host="https://coder.example.invalid", era=Era.D
    )
    return runtime.install(settings, [f"token-{i}" for i in range(10)])


def test_two_thousand_users_make_one_tls_context(contexts_made: list[ssl.SSLContext]) -> None:
    tls.tls_context.cache_clear()
    rt = https_runtime()
    clients = [rt.client(rt.identity()) for _ in range(2000)]
    assert len(contexts_made) == 1, "one context for the whole process"
    # Streams dial with that same context.
    assert tls.tls_context() is contexts_made[0]
    assert {c._headers["Coder-Session-Token"] for c in clients} == {f"token-{i}" for i in range(10)}
    for client in clients:
        client.close()
