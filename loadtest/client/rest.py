"""The chats REST API: one method per call chatload makes, timed at the edge.

Each call is timed from just before the request is written to when the response headers
arrive (``docs/metrics.md``), and reported to an ``on_request`` hook (Locust's request event
in a load test). Failures raise ``RestError`` carrying Coder's message and the status; the
session token is sent as a header and never appears in an error, a log or a report.

Each client is one user's keep-alive connection on ``client/http11.py`` (the process's one
TLS context, ``client/tls.py``), another while calls overlap. Under gevent, against the
simulator, 200 users x 10 calls on a busy 2-core VM: ~120 us of the generator's CPU a call on
a kept connection and ~290 us on a new one, where an ``httpx.Client`` per user cost ~840 us
and ~980 us; one httpx pool shared by all users was worse still (httpcore scans every pooled
connection, and polls each idle one, on every request). A client handed an httpx
``transport`` (tests' MockTransport) sends through httpx instead, with the same errors and
reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlencode

import httpx
import orjson

from loadtest.client.http11 import (
    KEEPALIVE_EXPIRY_S,
    HttpResponse,
    NoAnswer,
    Origin,
    Pool,
    header_block,
)
from loadtest.client.tls import tls_context
from loadtest.protocol.constants import QUEUE_FULL, SESSION_TOKEN_HEADER
from loadtest.protocol.eras import PATHS, ChatPaths, Era
from loadtest.protocol.models import (
    BuildInfoResponse,
    Chat,
    ChatInputPart,
    ChatMessagesResponse,
    CreateChatMessageRequest,
    CreateChatMessageResponse,
    CreateChatRequest,
    EditChatMessageRequest,
    SubmitToolResultsRequest,
    ToolResult,
    UpdateChatRequest,
)

#: Methods a request may be sent again after the connection failed (RFC 9110 §9.2.2): a POST
#: may have reached the server, so it is never repeated.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
BYPASS_RATELIMIT_HEADER = "X-Coder-Bypass-Ratelimit"

#: (name, method, latency ns, response bytes, error or None)
RequestHook = Callable[[str, str, int, int, "RestError | None"], None]


class RestError(Exception):
    """A call that failed: HTTP status (None when no response came) and Coder's message."""

    def __init__(self, name: str, status: int | None, message: str, detail: str = "") -> None:
        self.name = name
        self.status = status
        self.message = message
        self.detail = detail
        super().__init__(f"{name}: HTTP {status}: {message}" if status else f"{name}: {message}")

    @property
    def kind(self) -> str | None:
        """``connection`` when no answer came (the client's side: refused, reset, timed out);
        429s split: the chat's queue was full, or the per-user rate limit hit."""
        if self.status is None:
            return "connection"
        if self.status == 429:
            return "queue_full" if self.message == QUEUE_FULL[0] else "rate_limited"
        return None


@dataclass(slots=True)
class Timed:
    """A decoded response body and how long the server took to answer (ns)."""

    body: Any
    latency_ns: int


def _text(text: str) -> list[ChatInputPart]:
    return [ChatInputPart(type="text", text=text)]


def _error_from(name: str, response: HttpResponse) -> RestError:
    try:
        body = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        return RestError(
            name,
            response.status,
            str(body.get("message") or ""),
            str(body.get("detail") or ""),
        )
    text = response.body.decode("utf-8", "replace").strip()[:200]
    return RestError(name, response.status, text or response.reason)


class Wire(Protocol):
    """How a client's requests travel: ``send`` returns the whole response or raises
    ``NoAnswer``."""

    def send(self, method: str, target: str, body: bytes | None) -> HttpResponse: ...

    def close(self) -> None: ...


class _Http11Wire:
    """The user's keep-alive connection (``client/http11.py``), more while calls overlap."""

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float) -> None:
        try:
            origin: Origin | str = Origin.parse(base_url)
        except ValueError as exc:
            origin = str(exc)  # said by each call, as an unreachable deployment is
        self.connection = (
            Pool(origin, timeout, KEEPALIVE_EXPIRY_S) if isinstance(origin, Origin) else None
        )
        self._bad_url = origin if isinstance(origin, str) else ""
        self._head = header_block(headers)
        self._head_json = self._head + b"Content-Type: application/json\r\n"

    def send(self, method: str, target: str, body: bytes | None) -> HttpResponse:
        if self.connection is None:
            raise NoAnswer(self._bad_url, connected=False)
        head = self._head if body is None else self._head_json
        return self.connection.request(method, target, head, body)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


class _HttpxWire:
    """Through httpx, for a client handed an httpx transport (tests swap the network out)."""

    def __init__(
        self, base_url: str, headers: dict[str, str], timeout: float, transport: httpx.BaseTransport
    ) -> None:
        self._base = base_url
        self._http = httpx.Client(
            headers=headers, timeout=timeout, verify=tls_context(), transport=transport
        )

    def send(self, method: str, target: str, body: bytes | None) -> HttpResponse:
        headers = {"Content-Type": "application/json"} if body is not None else None
        request = self._http.build_request(
            method, self._base + target, content=body, headers=headers
        )
        start = time.perf_counter_ns()
        try:
            response = self._http.send(request, stream=True)
            latency = time.perf_counter_ns() - start
            try:
                response.read()
            finally:
                response.close()
        except httpx.TransportError as exc:
            connected = not isinstance(exc, httpx.ConnectError)
            raise NoAnswer(f"{type(exc).__name__}: {exc}", connected) from None
        return HttpResponse(
            response.status_code,
            response.reason_phrase,
            dict(response.headers),
            response.content,
            latency,
        )

    def close(self) -> None:
        self._http.close()


#: Pages of 100 workspaces read at most (a million): a bound on a server that never ends.
WORKSPACE_PAGES_MAX = 10_000


class ChatClient:
    """One identity's view of a Coder deployment's chats API."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        era: Era = Era.A,
        *,
        bypass_ratelimit: bool = False,
        timeout: float = 30.0,
        on_request: RequestHook | None = None,
        transport: httpx.BaseTransport | None = None,
        replicas: list[str] | None = None,
    ) -> None:
        """``replicas``: every replica of the deployment (``base_url`` among them); a call
        that cannot connect moves to the next, as a load balancer would."""
        headers = {"Accept": "application/json", "User-Agent": "chatload"}
        if token:
            headers[SESSION_TOKEN_HEADER] = token
        if bypass_ratelimit:
            headers[BYPASS_RATELIMIT_HEADER] = "true"
        self.base_url = base_url.rstrip("/")
        self._headers = headers
        self._timeout = timeout
        self._transport = transport
        self._wire = self._wire_to(self.base_url)
        self.paths: ChatPaths = PATHS[era]
        self.on_request = on_request
        self._replicas = [r.rstrip("/") for r in replicas or ()]

    def _wire_to(self, base_url: str) -> Wire:
        if self._transport is not None:
            return _HttpxWire(base_url, self._headers, self._timeout, self._transport)
        return _Http11Wire(base_url, self._headers, self._timeout)

    @property
    def era(self) -> Era:
        return self.paths.era

    @era.setter
    def era(self, era: Era) -> None:
        self.paths = PATHS[era]

    def close(self) -> None:
        self._wire.close()

    # ------------------------------------------------------------ the wire

    def call(
        self,
        name: str,
        method: str,
        path: str,
        body: Any = None,
        expect: tuple[int, ...] = (200,),
        params: dict[str, str] | None = None,
    ) -> Timed:
        """One request; raises ``RestError`` unless the status is one of ``expect``."""
        content = None if body is None else orjson.dumps(body)
        target = f"{path}?{urlencode(params)}" if params else path
        # A request whose connection failed before any answer is sent once more when that
        # cannot do harm: it never reached the server (connect failed) or it is idempotent;
        # one that could not connect to its replica tries each other replica once.
        retries_left = 1 + max(0, len(self._replicas) - 1)
        while True:
            start = time.perf_counter_ns()
            try:
                response = self._wire.send(method, target, content)
                break
            except NoAnswer as exc:
                latency = time.perf_counter_ns() - start
                refused = not exc.connected
                if retries_left and (refused or method in IDEMPOTENT):
                    retries_left -= 1
                    if refused and len(self._replicas) > 1:
                        self._next_replica()
                    continue
                error = RestError(name, None, str(exc))
                self._report(name, method, latency, 0, error)
                raise error from None
        latency = response.latency_ns
        size = len(response.body)
        if response.status not in expect:
            error = _error_from(name, response)
            self._report(name, method, latency, size, error)
            raise error
        self._report(name, method, latency, size, None)
        decoded = orjson.loads(response.body) if response.body.strip() else None
        return Timed(decoded, latency)

    def _next_replica(self) -> None:
        replicas = self._replicas
        index = replicas.index(self.base_url) if self.base_url in replicas else -1
        self.base_url = replicas[(index + 1) % len(replicas)]
        self._wire.close()
        self._wire = self._wire_to(self.base_url)

    def _report(self, name: str, method: str, ns: int, size: int, error: RestError | None) -> None:
        if self.on_request is not None:
            self.on_request(name, method, ns, size, error)

    # ------------------------------------------------------------ deployment

    def buildinfo(self) -> BuildInfoResponse:
        return BuildInfoResponse.model_validate(
            self.call("buildinfo", "GET", "/api/v2/buildinfo").body
        )

    def me(self) -> dict[str, Any]:
        body = self.call("users_me", "GET", "/api/v2/users/me").body
        return body if isinstance(body, dict) else {}

    def experiments(self) -> list[str]:
        body = self.call("experiments", "GET", "/api/v2/experiments").body
        return [str(x) for x in body] if isinstance(body, list) else []

    # ------------------------------------------------------------ chats

    def create_chat(
        self, text: str, organization_id: str | None = None, workspace_id: str | None = None
    ) -> tuple[Chat, int]:
        request = CreateChatRequest(content=_text(text))
        if organization_id:
            # Required from era B on; era A ignores unknown fields, as Coder's decoder does.
            request.organization_id = organization_id
        if workspace_id:
            request.workspace_id = workspace_id
        timed = self.call("create_chat", "POST", self.paths.chats(), request.wire(), expect=(201,))
        return Chat.model_validate(timed.body), timed.latency_ns

    def post_message(
        self, chat_id: str, text: str, busy_behavior: Literal["queue", "interrupt"] | None = None
    ) -> tuple[CreateChatMessageResponse, int]:
        request = CreateChatMessageRequest(content=_text(text))
        if busy_behavior:
            request.busy_behavior = busy_behavior
        timed = self.call("create_message", "POST", self.paths.messages(chat_id), request.wire())
        return CreateChatMessageResponse.model_validate(timed.body), timed.latency_ns

    def edit_message(self, chat_id: str, message_id: int, text: str) -> tuple[int | None, int]:
        """(the id the edited message has now, latency): Coder inserts an edited message
        anew, with a new id (era C/D answer ``{message, ...}``, A/B the bare message)."""
        body = EditChatMessageRequest(content=_text(text)).wire()
        timed = self.call("edit_message", "PATCH", self.paths.message(chat_id, message_id), body)
        answer = timed.body if isinstance(timed.body, dict) else {}
        message = answer.get("message", answer)
        new_id = message.get("id") if isinstance(message, dict) else None
        return (new_id if isinstance(new_id, int) else None), timed.latency_ns

    def interrupt(self, chat_id: str) -> int:
        return self.call("interrupt_chat", "POST", self.paths.interrupt(chat_id)).latency_ns

    def submit_tool_results(self, chat_id: str, call_ids: list[str], output: object) -> int:
        """Answer an ``action_required`` (era D, spec §9.3): the same ``output`` for each
        call, none of them an error; 204 when accepted."""
        body = SubmitToolResultsRequest(
            results=[
                ToolResult(tool_call_id=call_id, output=output, is_error=False)
                for call_id in call_ids
            ]
        ).wire()
        path = f"{self.paths.chat(chat_id)}/tool-results"
        return self.call("submit_tool_results", "POST", path, body, expect=(204,)).latency_ns

    def message_ids(self, chat_id: str) -> list[int]:
        """Every committed message id of a chat, oldest first (``GET /messages``, paged)."""
        ids: list[int] = []
        after = 0
        while True:
            params = {"after_id": str(after), "limit": "200"}
            body = self.call(
                "list_messages", "GET", self.paths.messages(chat_id), params=params
            ).body
            page = ChatMessagesResponse.model_validate(body)
            ids += [m.id for m in page.messages]
            if not page.has_more or not page.messages:
                return ids
            after = page.messages[-1].id

    def workspaces(self, prefix: str) -> list[dict[str, Any]]:
        """Workspaces whose name or owner's name starts with ``prefix``, as Coder's scaletest
        finds its own (cli/exp_scaletest.go ``getScaletestWorkspaces``: ``q=name:"prefix"``,
        a partial match, paged 100 at a time until a page is empty, then kept by prefix;
        codersdk/workspaces.go quotes each filter term)."""
        found: list[dict[str, Any]] = []
        for number in range(WORKSPACE_PAGES_MAX):
            params = {"q": f'name:"{prefix}"', "limit": "100", "offset": str(number * 100)}
            body = self.call("list_workspaces", "GET", "/api/v2/workspaces", params=params).body
            rows = body.get("workspaces") if isinstance(body, dict) else None
            if not rows:
                break
            found += [
                w
                for w in rows
                if isinstance(w, dict)
                and (
                    str(w.get("name", "")).startswith(prefix)
                    or str(w.get("owner_name", "")).startswith(prefix)
                )
            ]
        return found

    def list_chats(self) -> list[Chat]:
        body = self.call("list_chats", "GET", self.paths.chats()).body
        return [Chat.model_validate(c) for c in body or ()]

    def archive(self, chat_id: str) -> None:
        if self.paths.archive_by_post:
            self.call("archive_chat", "POST", self.paths.archive(chat_id), expect=(204,))
        else:
            self.call(
                "archive_chat",
                "PATCH",
                self.paths.chat(chat_id),
                UpdateChatRequest(archived=True).wire(),
                expect=(204,),
            )

    # ------------------------------------------------------------ the stream

    def stream_target(
        self, chat_id: str, after_id: int | None = None, base_url: str | None = None
    ) -> tuple[str, dict[str, str]]:
        """The websocket URL and headers for a chat's stream (auth as a header, as the SDK),
        on this client's deployment URL or another replica's ``base_url``."""
        path = self.paths.stream(chat_id)
        return self._websocket(f"{path}?after_id={after_id}" if after_id else path, base_url)

    def watch_target(self, base_url: str | None = None) -> tuple[str, dict[str, str]]:
        """The websocket URL and headers of the user's ``/chats/watch`` (a browser tab's)."""
        return self._websocket(f"{self.paths.base}/watch", base_url)

    def _websocket(self, path: str, base_url: str | None) -> tuple[str, dict[str, str]]:
        base = (base_url or self.base_url).rstrip("/")
        url = base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        headers = {k: v for k, v in self._headers.items() if k != "Accept"}
        return url + path, headers
