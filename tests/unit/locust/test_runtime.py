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
    assert len(contexts_made) <= 1, "at most one context for the whole process"
    # Streams and REST connections dial with that same one (made when first needed).
    assert tls.tls_context() is contexts_made[0] and len(contexts_made) == 1
    assert {c._headers["Coder-Session-Token"] for c in clients} == {f"token-{i}" for i in range(10)}
    for client in clients:
        client.close()


def replicas_runtime(placement: str) -> runtime.Runtime:
    scenario = Scenario.model_validate({"chat": {"watcher_placement": placement}})
    hosts = [f"http://replica-{i}:3000" for i in range(3)]
    settings = runtime.RunSettings(scenario=scenario, host=hosts[0], era=Era.D, replicas=hosts)
    return runtime.install(settings, ["token-a", "token-b"])


def test_users_spread_over_replicas_and_watchers_go_to_another() -> None:
    rt = replicas_runtime("other")
    identities = [rt.identity() for _ in range(6)]
    assert [i.replica for i in identities] == [0, 1, 2, 0, 1, 2]
    assert [i.token for i in identities] == ["token-a", "token-b"] * 3
    assert rt.client(identities[1]).base_url == "http://replica-1:3000"
    placed = [rt.placed(1) for _ in range(4)]
    assert set(placed) == {0, 2}  # never the driver's own, and both others in turn
    same, anywhere = replicas_runtime("same"), replicas_runtime("any")
    assert {same.placed(2) for _ in range(3)} == {2}
    assert {anywhere.placed(2) for _ in range(3)} == {0, 1, 2}
    one = https_runtime()
    assert one.identity().replica is None and one.placed(None) is None


def test_each_driver_gets_its_own_account_and_watchers_take_none() -> None:
    rt = https_runtime()  # ten accounts
    tokens = []
    for _ in range(10):
        tokens.append(rt.identity().token)
        rt.identity(drives=False)  # a watcher in between borrows its chat's driver's login
    assert tokens == [f"token-{i}" for i in range(10)]


def test_workers_deal_the_accounts_out_by_their_slots() -> None:
    seen = []
    for slot in range(3):
        rt = https_runtime()
        rt.slot, rt.slots = slot, 3
        seen += [rt.identity().token for _ in range(3)]
    assert sorted(seen) == sorted(f"token-{i}" for i in range(9)), "no account used twice"


def test_chats_are_dealt_over_the_workspaces_round_robin_across_processes() -> None:
    settings = runtime.RunSettings(
        scenario=Scenario(), host="http://x", era=Era.D, workspaces=["w0", "w1", "w2", "w3"]
    )
    dealt = []
    for slot in range(2):
        rt = runtime.install(settings, ["t"])
        rt.slot, rt.slots = slot, 2
        dealt += [rt.workspace() for _ in range(2)]
    assert sorted(dealt) == ["w0", "w1", "w2", "w3"]
    bare = runtime.install(runtime.RunSettings(scenario=Scenario(), host="http://x", era=Era.D), [])
    assert bare.workspace() is None
