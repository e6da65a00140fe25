"""``chatload trace export --host --token``: a trace of the token owner's chats, from the API.

For someone without the database: ``GET /chats`` pages (``limit``/``offset``, codersdk
``Pagination``; archived chats listed apart), the sub-agents each root chat lists under
``children`` (era D: the list pages over root chats only, coderd/database/queries/chats.sql
``GetChats``), then each chat's ``GET /chats/{id}/messages``, newest first in pages of 200
with ``before_id`` (protocol §1.4), whose ``usage`` carries the output tokens. Only chats
whose ``owner_id`` is the token's user are kept, even when the token may see others'.

Coder limits each user to 512 requests a minute per URL path (protocol §8.3). The export
paces itself (``--rps``, under that limit even on one path) and, when answered 429 anyway,
waits as told (``Retry-After``, else httprate's ``X-Ratelimit-Reset``, else a doubling
backoff) and asks again. The token goes in a header and never into a message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import orjson

from loadtest.client.tls import tls_context
from loadtest.protocol.constants import SESSION_TOKEN_HEADER
from loadtest.protocol.eras import PATHS, Era
from loadtest.trace.build import Built, ExportError, Message, SourceChat, build_trace
from loadtest.trace.progress import ProgressBar

SOURCE = "coder-api"
#: Chats a page: codersdk's default is 50; a server that caps lower pages the same way.
CHATS_PAGE = 100
#: Messages a page: the most ``GET /messages`` takes ("Invalid limit parameter (1-200).").
MESSAGES_PAGE = 200
#: Requests a second by default: under 512 a minute even if all went to one path.
DEFAULT_RPS = 8.0
#: How long one 429 may make us wait, and how many in a row before giving up.
MAX_WAIT_S = 60.0
MAX_429 = 10


class Api:
    """GETs against one deployment as one user: paced, patient with 429s."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        rps: float = DEFAULT_RPS,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        on_wait: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            headers={
                SESSION_TOKEN_HEADER: token,
                "Accept": "application/json",
                "User-Agent": "chatload",
            },
            timeout=timeout,
            verify=tls_context(),
            transport=transport,
        )
        self._gap = 1.0 / rps if rps > 0 else 0.0
        self._sleep, self._clock, self._wall = sleep, clock, wall
        self._next = 0.0
        self._on_wait = on_wait
        #: 429s answered, and seconds waited on them.
        self.limited = 0
        self.waited_s = 0.0

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        """The decoded body of ``GET path``; ``ExportError`` for anything but a 200."""
        for attempt in range(MAX_429 + 1):
            self._pace()
            try:
                response = self._http.get(self.base_url + path, params=params)
            except httpx.TransportError as exc:
                raise ExportError(f"GET {path}: no answer ({type(exc).__name__})") from None
            if response.status_code != 429:
                break
            self.limited += 1
            if attempt == MAX_429:
                raise ExportError(f"GET {path}: still rate limited after {MAX_429} waits")
            wait = self._wait_for(response, attempt)
            self.waited_s += wait
            self._on_wait(f"rate limited on {path}: waiting {wait:.0f} s as the server asks")
            self._sleep(wait)
        if response.status_code != 200:
            raise ExportError(
                f"GET {path}: HTTP {response.status_code}: {_message(response)}",
                unreachable=response.status_code in (401, 403, 404) or response.status_code >= 500,
            )
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise ExportError(f"GET {path}: the answer is not JSON") from None

    def _pace(self) -> None:
        now = self._clock()
        if now < self._next:
            self._sleep(self._next - now)
            now = self._next
        self._next = now + self._gap

    def _wait_for(self, response: httpx.Response, attempt: int) -> float:
        """Seconds to wait after a 429: the server's word, else a doubling backoff."""
        after = response.headers.get("Retry-After")
        if after is not None:
            try:
                return min(MAX_WAIT_S, max(0.0, float(after)))
            except ValueError:
                pass
        reset = response.headers.get("X-Ratelimit-Reset")
        if reset is not None:
            try:
                return min(MAX_WAIT_S, max(1.0, float(reset) - self._wall()))
            except ValueError:
                pass
        return min(MAX_WAIT_S, 2.0**attempt)


def _message(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text.strip()[:200] or response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("message") or body)[:300]
    return str(body)[:300]


def parse_time(value: str) -> float:
    """Seconds since the epoch of an RFC 3339 time as Go writes it (nanoseconds, ``Z``)."""
    return datetime.fromisoformat(value).timestamp()


def _chat_rows(api: Api, era: Era) -> Iterator[dict[str, Any]]:
    """Every chat the token sees, archived too; sub-agents listed under ``children`` come
    after their parent. A server that ignores ``offset`` ends the paging (no new chat)."""
    path = PATHS[era].chats()
    archived = {"archived": "true"} if era is Era.A else {"q": "archived:true"}
    seen: set[str] = set()
    for extra in ({}, archived):
        offset = 0
        while True:
            page = api.get(path, {**extra, "limit": str(CHATS_PAGE), "offset": str(offset)})
            if not isinstance(page, list) or not page:
                break
            new = 0
            for row in page:
                for chat in (row, *(row.get("children") or ())):
                    if isinstance(chat, dict) and chat.get("id") not in seen:
                        seen.add(str(chat.get("id")))
                        new += 1
                        yield chat
            if new == 0 or len(page) < CHATS_PAGE:
                break
            offset += len(page)


def _messages(api: Api, era: Era, chat_id: str) -> list[Message]:
    """The chat's messages, oldest first; only the lengths and tool names of their text."""
    path = PATHS[era].messages(chat_id)
    rows: dict[int, dict[str, Any]] = {}
    params = {"limit": str(MESSAGES_PAGE)}
    while True:
        page = api.get(path, params)
        if not isinstance(page, dict):
            raise ExportError(f"GET {path}: the answer is not a page of messages")
        batch = page.get("messages") or []
        fresh = [m for m in batch if isinstance(m, dict) and m.get("id") not in rows]
        for message in fresh:
            rows[int(message["id"])] = message
        if not fresh or not page.get("has_more"):
            break
        params = {"limit": str(MESSAGES_PAGE), "before_id": str(min(rows))}
    return [_message_of(rows[key]) for key in sorted(rows)]


def _message_of(row: dict[str, Any]) -> Message:
    parts = [p for p in row.get("content") or () if isinstance(p, dict)]
    usage = row.get("usage") or {}
    tokens = usage.get("output_tokens") if isinstance(usage, dict) else None
    return Message(
        at=parse_time(str(row["created_at"])),
        role=str(row.get("role", "")),
        visible=True,  # the API shows only what the user sees
        text_chars=sum(len(p.get("text") or "") for p in parts if p.get("type") == "text"),
        tools=tuple(str(p.get("tool_name") or "") for p in parts if p.get("type") == "tool-call"),
        output_tokens=tokens if isinstance(tokens, int) else None,
    )


def export_api(
    api: Api,
    era: Era,
    *,
    since: datetime | None,
    until: datetime | None,
    salt: bytes,
    progress: ProgressBar,
) -> Built:
    """The trace of the token owner's chats started in [since, until)."""
    me = api.get("/api/v2/users/me")
    owner = me.get("id") if isinstance(me, dict) else None
    if not owner:
        raise ExportError("GET /api/v2/users/me: no user id in the answer")
    low = since.timestamp() if since else float("-inf")
    high = until.timestamp() if until else float("inf")
    mine = {str(r["id"]): r for r in _chat_rows(api, era) if r.get("owner_id") == owner}
    created = {chat_id: parse_time(str(row["created_at"])) for chat_id, row in mine.items()}
    roots = {
        chat_id
        for chat_id, row in mine.items()
        if _parent_of(row) is None and low <= created[chat_id] < high
    }
    chosen = [row for chat_id, row in mine.items() if chat_id in roots or _parent_of(row) in roots]

    def chats() -> Iterator[SourceChat]:
        """One chat's messages at a time: the builder keeps only its turns."""
        for done, row in enumerate(chosen):
            chat_id = str(row["id"])
            yield SourceChat(
                id=chat_id,
                created=created[chat_id],
                parent=_parent_of(row),
                workspace=row.get("workspace_id") or None,
                messages=_messages(api, era, chat_id),
            )
            progress.update((done + 1) / len(chosen), f"{done + 1:,} of {len(chosen):,} chats")

    try:
        return build_trace(chats(), source=SOURCE, salt=salt, since=since, until=until)
    finally:
        progress.close()


def _parent_of(row: dict[str, Any]) -> str | None:
    parent = row.get("parent_chat_id")
    return str(parent) if parent else None
