"""The preflight tells the era: by version where it says, by the routes for a ``-devel`` build
(section 8.2), and never takes the unrelated pre-A ``/api/v2/chats`` for today's."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from loadtest.client import preflight
from loadtest.client.rest import ChatClient
from loadtest.protocol.eras import Era

ME = {"id": "u", "organization_ids": ["o"], "roles": [{"name": "owner"}]}
CHAT = {
    "id": "c",
    "owner_id": "u",
    "status": "waiting",
    "created_at": "2026-12-01T00:00:00Z",
    "updated_at": "2026-12-01T00:00:00Z",
}


def deployment(
    version: str, routes: dict[str, object]
) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v2/buildinfo":
            return httpx.Response(200, json={"version": version})
        if path == "/api/v2/users/me":
            return httpx.Response(200, json=ME)
        if path in routes:
            return httpx.Response(200, json=routes[path])
        return httpx.Response(404, json={"message": "Route not found."})

    return answer


@pytest.fixture
def mock_clients(
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[Callable[[httpx.Request], httpx.Response]], None]:
    def use(handler: Callable[[httpx.Request], httpx.Response]) -> None:
        original = ChatClient.__init__

        def init(self: ChatClient, *args: object, **kwargs: object) -> None:
            kwargs["transport"] = httpx.MockTransport(handler)
            original(self, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(ChatClient, "__init__", init)

    return use


@pytest.mark.parametrize(
    ("version", "routes", "era", "from_stream"),
    [
        ("v2.38.1+abc", {"/api/v2/chats": []}, Era.D, False),
        ("v2.37.0+abc", {"/api/v2/chats": [], "/api/experimental/chats": []}, Era.C, False),
        ("v0.0.0-devel+abc", {"/api/v2/chats": [CHAT]}, Era.D, False),
        # A -devel build of D: its version would say D, but -devel versions are not trusted.
        ("v2.38.0-devel+abc", {"/api/v2/chats": []}, Era.D, False),
        ("v2.38.0-devel+abc", {"/api/v2/chats": [], "/api/experimental/chats": []}, Era.C, False),
        ("v0.0.0-devel+abc", {"/api/v2/chats": [], "/api/experimental/chats": []}, Era.C, False),
        # Before era A: an unrelated API at /api/v2/chats; the stream must tell A from B.
        (
            "v2.20.0-devel+abc",
            {
                "/api/v2/chats": [{"id": 1, "role": "user", "content": "hi"}],
                "/api/experimental/chats": [],
            },
            Era.A,
            True,
        ),
        ("v2.31.0+abc", {"/api/experimental/chats": []}, Era.A, True),
    ],
)
def test_the_era_is_told_by_version_or_by_routes(
    mock_clients: Callable[[Callable[[httpx.Request], httpx.Response]], None],
    version: str,
    routes: dict[str, object],
    era: Era,
    from_stream: bool,
) -> None:
    mock_clients(deployment(version, routes))
    target = preflight.inspect_target("http://coder.test", ["t"])
    assert (target.era, target.era_from_stream) == (era, from_stream)


def test_rows_that_are_not_chats_are_a_clear_target_error(
    mock_clients: Callable[[Callable[[httpx.Request], httpx.Response]], None],
) -> None:
    mock_clients(deployment("v2.38.0", {"/api/v2/chats": [{"id": "c", "status": "waiting"}]}))
    with pytest.raises(preflight.TargetError, match="not chats"):
        preflight.inspect_target("http://coder.test", ["t"])
