"""The REST client over httpx's MockTransport: paths and bodies per era, headers, Coder's errors, every call reported, the one safe resend."""

from __future__ import annotations

import httpx
import orjson
import pytest

from loadtest.client.rest import ChatClient, RestError
from loadtest.protocol.eras import PATHS, Era


def test_a_failed_idempotent_request_is_sent_once_more_and_a_post_never() -> None:
    sent: list[str] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        sent.append(request.method)
        if len(sent) % 2:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return httpx.Response(200, json=[])

    client = ChatClient("http://127.0.0.1:9", "t", Era.D, transport=httpx.MockTransport(flaky))
    assert client.list_chats() == []
    assert sent == ["GET", "GET"]
    sent.clear()
    with pytest.raises(RestError) as failed:
        client.post_message("c1", "hello")
    assert sent == ["POST"]
    assert failed.value.kind == "connection" and failed.value.status is None


class Recorded:
    """A MockTransport handler that answers from a table and keeps every request."""

    def __init__(self, answers: dict[tuple[str, str], httpx.Response]) -> None:
        self.answers = answers
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.get(
            (request.method, request.url.path),
            httpx.Response(404, json={"message": "Route not found."}),
        )


CHAT = {
    "id": "c0ffee00-0000-4000-8000-000000000001",
    "owner_id": "u",
    "title": "t",
    "status": "pending",
    "created_at": "2026-11-01T00:00:00Z",
    "updated_at": "2026-11-01T00:00:00Z",
}


def client_for(
    era: Era, answers: dict[tuple[str, str], httpx.Response], **kw: object
) -> tuple[ChatClient, Recorded, list[tuple[str, int | None]]]:
    handler = Recorded(answers)
    reported: list[tuple[str, int | None]] = []

    def hook(name: str, method: str, ns: int, size: int, error: RestError | None) -> None:
        assert ns >= 0
        reported.append((name, error.status if error else 200))

    client = ChatClient(
        "http://coder.test",
        "secret-token",
        era,
        transport=httpx.MockTransport(handler),
        on_request=hook,
        **kw,  # type: ignore[arg-type]
    )
    return client, handler, reported


@pytest.mark.parametrize("era", [Era.A, Era.B, Era.D])
def test_create_chat_sends_the_prompt_and_the_token_and_reports_the_call(era: Era) -> None:
    client, handler, reported = client_for(
        era, {("POST", PATHS[era].chats()): httpx.Response(201, json=CHAT)}, bypass_ratelimit=True
    )
    chat, latency = client.create_chat("hello", organization_id="org-1")
    assert chat.id == CHAT["id"] and latency >= 0
    (request,) = handler.requests
    assert request.headers["Coder-Session-Token"] == "secret-token"
    assert request.headers["X-Coder-Bypass-Ratelimit"] == "true"
    assert orjson.loads(request.content) == {
        "content": [{"type": "text", "text": "hello"}],
        "organization_id": "org-1",
    }
    assert reported == [("create_chat", 200)]


def test_coders_error_body_becomes_the_error_and_429s_are_told_apart() -> None:
    messages = PATHS[Era.D].messages(CHAT["id"])
    client, _, reported = client_for(
        Era.D,
        {
            ("POST", messages): httpx.Response(
                429, json={"message": "Message queue is full.", "detail": "20 queued"}
            )
        },
    )
    with pytest.raises(RestError) as full:
        client.post_message(CHAT["id"], "again")
    assert (full.value.status, full.value.message, full.value.detail) == (
        429,
        "Message queue is full.",
        "20 queued",
    )
    assert full.value.kind == "queue_full"
    assert "secret-token" not in str(full.value)
    assert reported == [("create_message", 429)]
    limited = RestError("create_message", 429, "You've been rate limited.")
    assert limited.kind == "rate_limited"


def test_archive_uses_the_eras_verb() -> None:
    a_archive = PATHS[Era.A].archive(CHAT["id"])
    client, handler, _ = client_for(Era.A, {("POST", a_archive): httpx.Response(204)})
    client.archive(CHAT["id"])
    assert [(r.method, r.url.path) for r in handler.requests] == [("POST", a_archive)]
    d_chat = PATHS[Era.D].chat(CHAT["id"])
    client, handler, _ = client_for(Era.D, {("PATCH", d_chat): httpx.Response(204)})
    client.archive(CHAT["id"])
    assert orjson.loads(handler.requests[0].content) == {"archived": True}


def test_a_body_that_is_not_json_is_kept_short_as_the_message() -> None:
    client, _, _ = client_for(
        Era.D, {("GET", "/api/v2/buildinfo"): httpx.Response(502, text="<html>" + "x" * 500)}
    )
    with pytest.raises(RestError) as bad:
        client.buildinfo()
    assert bad.value.status == 502 and len(bad.value.message) <= 200
