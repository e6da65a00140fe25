"""Setup's probe chat: it waits for ``waiting`` every 0.5 s for at most 15 s, and names what
went wrong otherwise; the probe is archived either way."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import httpx
import pytest

from loadtest.client.rest import ChatClient
from loadtest.deploy.admin import ProbeError, probe_chat
from loadtest.protocol.eras import PATHS, Era

CHAT = {
    "id": "c0ffee00-0000-4000-8000-000000000001",
    "owner_id": "u",
    "status": "pending",
    "created_at": "2026-12-01T00:00:00Z",
    "updated_at": "2026-12-01T00:00:00Z",
}


def deployment(statuses: Iterator[Mapping[str, object]], seen: list[str]) -> ChatClient:
    one = PATHS[Era.D].chat(str(CHAT["id"]))

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.method == "POST":
            return httpx.Response(201, json=CHAT)
        if request.method == "GET" and request.url.path == one:
            return httpx.Response(200, json={**CHAT, **next(statuses)})
        return httpx.Response(204)

    return ChatClient("http://coder.test", "t", Era.D, transport=httpx.MockTransport(answer))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_probe_polls_until_waiting_then_archives() -> None:
    seen: list[str] = []
    clock = Clock()
    statuses = iter([{"status": "pending"}, {"status": "running"}, {"status": "waiting"}])
    waited = probe_chat(deployment(statuses, seen), "o", clock=clock, sleep=clock.sleep)
    assert waited == 1.0 and clock.sleeps == [0.5, 0.5]
    assert seen[-1].startswith("PATCH")  # archived


def test_the_probe_gives_up_after_15_s_and_names_an_error() -> None:
    seen: list[str] = []
    clock = Clock()
    forever = iter(lambda: {"status": "running"}, None)
    with pytest.raises(ProbeError, match="still 'running' after 15 s"):
        probe_chat(deployment(forever, seen), "o", clock=clock, sleep=clock.sleep)
    assert len(clock.sleeps) == 30 and seen[-1].startswith("PATCH")
    failed = iter(
        [{"status": "error", "last_error": {"message": "OpenAI is rate limiting requests."}}]
    )
    with pytest.raises(ProbeError, match="OpenAI is rate limiting requests"):
        probe_chat(deployment(failed, []), "o", clock=Clock(), sleep=Clock().sleep)
