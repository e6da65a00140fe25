"""The API export against a scripted server: pacing, 429s, paging, owners, sub-agents."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from loadtest.protocol.eras import Era
from loadtest.trace.build import ExportError, opaque
from loadtest.trace.export_api import Api, export_api, parse_time
from loadtest.trace.progress import ProgressBar

TOKEN = "secret-token-123"
ME = "user-me"


class Clock:
    """A fake clock that sleep() advances: waits are asserted, never slept."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def api_for(
    handler: Callable[[httpx.Request], httpx.Response], clock: Clock, rps: float = 0
) -> Api:
    return Api(
        "http://coder.test",
        TOKEN,
        rps=rps,
        transport=httpx.MockTransport(handler),
        sleep=clock.sleep,
        clock=clock.monotonic,
        wall=lambda: clock.now,
    )


def test_requests_are_paced_at_the_rate_asked() -> None:
    clock = Clock()
    api = api_for(lambda r: httpx.Response(200, json=[]), clock, rps=4)
    for _ in range(5):
        api.get("/x")
    assert clock.slept == [0.25] * 4


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"X-Ratelimit-Reset": "1012"}, 12.0),  # an epoch second, as httprate sends
        ({"Retry-After": "600"}, 60.0),  # never more than a minute at once
        ({}, 1.0),  # nothing said: a backoff starting at 1 s
    ],
)
def test_a_429_waits_as_the_server_says_then_asks_again(
    headers: dict[str, str], wait: float
) -> None:
    clock = Clock()
    answers = [httpx.Response(429, headers=headers, json={"message": "slow down"})]
    answers.append(httpx.Response(200, json={"ok": True}))
    api = api_for(lambda r: answers.pop(0), clock)
    assert api.get("/x") == {"ok": True}
    assert clock.slept == [wait]
    assert (api.limited, api.waited_s) == (1, wait)


def test_endless_429s_give_up_with_a_clear_error() -> None:
    clock = Clock()
    api = api_for(lambda r: httpx.Response(429, headers={"Retry-After": "1"}), clock)
    with pytest.raises(ExportError, match="still rate limited after 10 waits"):
        api.get("/x")


def test_errors_never_carry_the_token() -> None:
    clock = Clock()
    api = api_for(lambda r: httpx.Response(401, json={"message": "API key is invalid."}), clock)
    with pytest.raises(ExportError) as caught:
        api.get("/api/v2/users/me")
    assert "API key is invalid." in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert caught.value.unreachable


def message(
    mid: int,
    at: str,
    role: str,
    text: str = "",
    tools: tuple[str, ...] = (),
    out: int | None = None,
) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content += [
        {"type": "tool-call", "tool_call_id": f"t{i}", "tool_name": n} for i, n in enumerate(tools)
    ]
    row: dict[str, Any] = {
        "id": mid,
        "chat_id": "x",
        "created_at": at,
        "role": role,
        "content": content,
    }
    if out is not None:
        row["usage"] = {"output_tokens": out, "input_tokens": 999}
    return row


def chat(
    cid: str, at: str, owner: str = ME, parent: str | None = None, children: list | None = None
) -> dict[str, Any]:
    return {
        "id": cid,
        "owner_id": owner,
        "title": f"SECRET TITLE {cid}",
        "status": "waiting",
        "created_at": at,
        "updated_at": at,
        "parent_chat_id": parent,
        "workspace_id": "ws-1" if parent or cid == "root" else None,
        "children": children or [],
    }


class Server:
    """Coder's answers for three chats of ours (one sub-agent under a root), one of another
    user, one archived; messages in pages of two, newest first with ``before_id``."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        child = chat("kid", "2026-12-08T09:00:05.123456789Z", parent="root")
        self.chats = [
            chat("root", "2026-12-08T09:00:00Z", children=[child]),
            chat("late", "2026-12-08T11:00:00Z"),
            chat("theirs", "2026-12-08T09:30:00Z", owner="someone-else"),
        ]
        self.archived = [chat("old", "2026-12-08T09:10:00Z")]
        self.messages = {
            "root": [
                message(1, "2026-12-08T09:00:00.5Z", "user", "SECRET PROMPT!"),
                message(
                    2, "2026-12-08T09:00:03Z", "assistant", "SECRET ANSWER", ("spawn_agent",), 40
                ),
                message(3, "2026-12-08T09:00:04Z", "tool"),
                message(4, "2026-12-08T09:00:09Z", "assistant", "more", (), 2),
            ],
            "kid": [message(5, "2026-12-08T09:00:05.2Z", "user", "abc")],
            "old": [message(6, "2026-12-08T09:10:00Z", "user", "hello")],
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["Coder-Session-Token"] == TOKEN
        path, query = request.url.path, dict(request.url.params)
        self.calls.append(f"{path}?{request.url.query.decode()}")
        if path == "/api/v2/users/me":
            return httpx.Response(200, json={"id": ME, "username": "SECRET_USERNAME"})
        if path == "/api/v2/chats":
            rows = self.archived if query.get("q") == "archived:true" else self.chats
            offset, limit = int(query["offset"]), int(query["limit"])
            return httpx.Response(200, json=rows[offset : offset + limit])
        chat_id = path.split("/")[4]
        rows = sorted(self.messages.get(chat_id, []), key=lambda m: -m["id"])
        if "before_id" in query:
            rows = [m for m in rows if m["id"] < int(query["before_id"])]
        page = rows[:2]
        return httpx.Response(
            200, json={"messages": page, "queued_messages": [], "has_more": len(rows) > 2}
        )


def test_the_owners_chats_in_the_window_with_their_sub_agents() -> None:
    server = Server()
    api = api_for(server, Clock())
    built = export_api(
        api,
        Era.D,
        since=datetime(2026, 12, 8, 9, 0, tzinfo=UTC),
        until=datetime(2026, 12, 8, 10, 0, tzinfo=UTC),
        salt=b"s",
        progress=ProgressBar("test", enabled=False),
    )
    trace = built.trace.parsed()
    assert [c.chat for c in trace.chats] == [
        opaque(b"s", "root"),
        opaque(b"s", "kid"),
        opaque(b"s", "old"),
    ]
    root, kid, old = trace.chats
    assert (root.start_s, kid.start_s, old.start_s) == (0.0, 5.123, 600.0)
    assert kid.parent == root.chat
    assert (root.workspace, kid.workspace, old.workspace) == (0, 0, None)
    (turn,) = root.turns
    assert turn.model_dump() == {
        "think_s": 0.5,
        "prompt_chars": len("SECRET PROMPT!"),
        "steps": 2,
        "tools": {"spawn_agent": 1},
        "subagents": 1,
        "output_tokens": 42,
        "duration_s": 8.5,
    }
    # Paged newest first with before_id until has_more is false.
    assert "/api/v2/chats/root/messages?limit=200&before_id=3" in server.calls
    assert not any("/theirs/" in call or "/late/" in call for call in server.calls)


def test_go_times_with_nanoseconds_parse() -> None:
    assert parse_time("2026-12-08T09:00:05.123456789Z") == pytest.approx(
        datetime(2026, 12, 8, 9, 0, 5, 123456, tzinfo=UTC).timestamp()
    )


def test_a_server_that_ignores_offset_ends_the_paging() -> None:
    calls = []

    def same_page(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path.endswith("/users/me"):
            return httpx.Response(200, json={"id": ME})
        if request.url.path.endswith("/messages"):
            return httpx.Response(200, json={"messages": [], "has_more": False})
        rows = [chat(f"c{i}", "2026-12-08T09:00:00Z") for i in range(100)]
        return httpx.Response(200, content=orjson.dumps(rows))

    built = export_api(
        api_for(same_page, Clock()),
        Era.D,
        since=None,
        until=None,
        salt=b"s",
        progress=ProgressBar("test", enabled=False),
    )
    assert built.without_turns == 100
    # The listing: a page of 100, then the same page again (nothing new: the end); the
    # archived listing: the same page, nothing new.
    assert calls.count("/api/v2/chats") == 3
