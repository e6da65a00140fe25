"""The chats surface chatload drives, mounted at the era's base path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from loadtest.protocol.constants import (
    BUSY_BEHAVIOR,
    INTERRUPT_ARCHIVED,
    MODEL_NOT_FOUND,
    NO_ORG_MODEL,
    NOTHING_TO_PROMOTE,
    PROMOTE_ARCHIVED,
    RELAY_PATH,
    TITLE_EMPTY,
    TITLE_TOO_LONG,
)
from loadtest.protocol.eras import EXPERIMENTAL_BASE, Era
from loadtest.protocol.models import (
    CreateChatMessageRequest,
    CreateChatRequest,
    EditChatMessageRequest,
    SubmitToolResultsRequest,
    UpdateChatRequest,
)
from loadtest.sim.accounts import ORGANIZATION_ID, User
from loadtest.sim.chat_state import ChatState, input_parts
from loadtest.sim.chat_wire import chat_wire, messages_page, with_messages_wire
from loadtest.sim.cluster.relay import serve_relay
from loadtest.sim.errors import ApiError, not_found
from loadtest.sim.stream import StreamEndpoint
from loadtest.sim.watch import WatchEndpoint
from loadtest.sim.web import (
    JSON,
    error_response,
    parse_request,
    parse_uuid,
    read_body,
    read_request,
)

if TYPE_CHECKING:
    from loadtest.sim.state import Sim


#: Headers every websocket dial carries (RFC 6455 and HTTP's own), not counted as a relay's.
HANDSHAKE_HEADERS: Final = ("host", "upgrade", "connection", "sec-websocket-", "user-agent")


def routes(sim: Sim) -> list[BaseRoute]:
    store, hub, player, paths = sim.store, sim.hub, sim.player, sim.paths
    era = sim.era

    def chat_of(request: Request) -> tuple[User, ChatState]:
        user = sim.request_user(request, chats=True)
        return user, store.get(user, parse_uuid(request.path_params["chat"]))

    def model_for(raw: object) -> str:
        """The model config a chat runs on: the one asked for, else the default."""
        if raw:
            model = sim.catalog.models.get(str(raw))
            if model is None or not model.enabled:
                raise ApiError(400, MODEL_NOT_FOUND if era is Era.D else "Model config not found.")
            return model.id
        default = sim.catalog.default_model()
        if default is None:
            if era is Era.D:
                raise ApiError(400, *NO_ORG_MODEL)
            raise ApiError(400, "No default chat model config is configured.")
        return default.id

    async def interrupt_run(chat: ChatState, promote: bool = True) -> None:
        """Stop the chat's run as chatd does (era d: ``interrupting`` first) and end the turn
        with what it had streamed."""
        if era is Era.D:
            hub.publish(chat.id, store.interrupting(chat))
        await player.stop(chat.id)
        if chat.active:
            sim.counters.of(chat.id).turns_interrupted += 1
            events, promoted = store.interrupted(chat, promote)
            hub.publish(chat.id, events)
            if promoted:
                player.start(chat)

    async def chats(request: Request) -> Response:
        user = sim.request_user(request, chats=True)
        if request.method == "GET":
            archived = "archived:true" in request.query_params.get("q", "")
            return JSON([chat_wire(era, chat) for chat in store.owned(user, archived)])
        create = await read_request(request, CreateChatRequest)
        if paths.needs_organization:
            organization = create.organization_id
            if not organization:
                raise ApiError(400, "organization_id is required.")
            if organization != ORGANIZATION_ID:
                raise ApiError(403, "You are not a member of the specified organization.")
        content = input_parts(create.content)
        # Section 10.1: stored as asked (Coder checks the caller may use it; guess: not here).
        workspace = parse_uuid(create.workspace_id) if create.workspace_id else None
        chat, events = store.create(
            user, content, model_for(create.model_config_id), workspace_id=workspace
        )
        hub.publish(chat.id, events)
        player.start(chat)
        if sim.replica is not None:
            await sim.replica.written()  # committed, as Coder's create is before it answers
        return JSON(chat_wire(era, chat), status_code=201)

    async def chat(request: Request) -> Response:
        _, found = chat_of(request)
        if request.method == "GET":
            if paths.get_returns_messages:
                return JSON(with_messages_wire(era, found))
            return JSON(chat_wire(era, found))
        update = await read_request(request, UpdateChatRequest)
        if update.title is not None:
            title = update.title.strip()
            if not title:
                raise ApiError(400, TITLE_EMPTY)
            if len(title) > 200:
                raise ApiError(400, TITLE_TOO_LONG)
            found.title = title
        if update.archived is not None:
            store.set_archived(found, update.archived)
        return Response(status_code=204)

    def archiver(archived: bool) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            _, found = chat_of(request)
            store.set_archived(found, archived)
            return Response(status_code=204)

        return handler

    async def messages(request: Request) -> Response:
        _, found = chat_of(request)
        if request.method == "GET":
            return JSON(messages_page(found, dict(request.query_params)))
        body = await read_body(request)
        busy = body.get("busy_behavior") if era is not Era.A else None
        if busy not in (None, "", "queue", "interrupt"):
            raise ApiError(400, *BUSY_BEHAVIOR)
        body.pop("busy_behavior", None)  # checked above, with Coder's own message
        post = parse_request(body, CreateChatMessageRequest)
        content = input_parts(post.content)
        if post.model_config_id:
            found.model_config_id = model_for(post.model_config_id)
        response, events, start = store.post(found, content, busy or None)
        hub.publish(found.id, events)
        if start:
            player.start(found)
        elif busy == "interrupt" and found.active:
            await interrupt_run(found)
        return JSON(response)

    async def edit(request: Request) -> Response:
        _, found = chat_of(request)
        edited = store.editable(found, request.path_params["message"])
        content = input_parts((await read_request(request, EditChatMessageRequest)).content)
        if await player.stop(found.id) or found.active:
            sim.counters.of(found.id).turns_interrupted += 1
        response, events = store.edit(found, edited, content)
        hub.publish(found.id, events)
        player.start(found)
        return JSON(response)

    async def interrupt(request: Request) -> Response:
        _, found = chat_of(request)
        if found.archived and era is not Era.A:
            raise ApiError(400, INTERRUPT_ARCHIVED)
        if found.active or era is Era.D:
            await interrupt_run(found)
        return JSON(chat_wire(era, found))

    async def tool_results(request: Request) -> Response:
        """Era D: the client's answers to an ``action_required``."""
        _, found = chat_of(request)
        submitted = await read_request(request, SubmitToolResultsRequest)
        hub.publish(found.id, store.tool_results(found, submitted.results))
        sim.counters.of(found.id).tool_results += 1
        player.answer(found.id)
        return Response(status_code=204)

    async def queued(request: Request) -> Response:
        _, found = chat_of(request)
        entry = store.queued(found, request.path_params["queued"])
        hub.publish(found.id, store.delete_queued(found, entry))
        return Response(status_code=204)

    async def promote(request: Request) -> Response:
        _, found = chat_of(request)
        if era is Era.D:
            if found.archived:
                raise ApiError(400, PROMOTE_ARCHIVED)
            if not found.queue:
                raise ApiError(409, NOTHING_TO_PROMOTE)
        entry = store.queued(found, request.path_params["queued"])
        if found.active:
            await interrupt_run(found, promote=False)
        message, events = store.promote(found, entry)
        hub.publish(found.id, events)
        player.start(found)
        if paths.promote_accepted:
            return JSON({"message": "Queued message promotion accepted."}, status_code=202)
        return JSON(message.wire())

    def forwarding(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        """A replica answers for a chat another replica runs by handing the call to it."""
        replica = sim.replica
        if replica is None:
            return handler

        async def forwarded(request: Request) -> Response:
            raw = request.path_params["chat"]
            if raw in store.chats:
                return await handler(request)
            found = await replica.remote_chat(parse_uuid(raw))
            if found is None:
                return await handler(request)  # not found, as usual
            user = sim.request_user(request, chats=True)
            if found[0] != user.id:
                raise not_found()
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            answer = await replica.forward(
                raw, request.method, path, dict(request.headers), await request.body()
            )
            if answer is None:  # this replica took the chat over meanwhile
                return await handler(request)
            status, body, media = answer
            return Response(body, status_code=status, media_type=media)

        return forwarded

    async def relay(websocket: WebSocket) -> None:
        """Coder's replica-to-replica relay of a chat's parts (``chatload sim --replicas``),
        for a caller who may read the chat: served from this replica's part buffer, whether
        or not this replica runs the chat (an episode not begun is waited for)."""
        replica = sim.replica
        try:
            user = sim.chat_user(
                websocket.headers, websocket.cookies, websocket.query_params, websocket.url.path
            )
            chat_id = parse_uuid(websocket.path_params["chat"])
            if replica is None:
                raise not_found()
            if chat_id not in store.chats:
                found = await replica.remote_chat(chat_id)
                if found is None or found[0] != user.id:
                    raise not_found()
            else:
                store.get(user, chat_id)
        except ApiError as error:
            await websocket.send_denial_response(error_response(error))
            return
        replica.tally.relays_served += 1
        replica.tally.relay_headers = sorted(
            name for name in websocket.headers if not name.startswith(HANDSHAKE_HEADERS)
        )
        await serve_relay(replica.parts, chat_id, websocket)

    def mounted(base: str) -> list[BaseRoute]:
        one = f"{base}/{{chat}}"
        table: list[BaseRoute] = [
            Route(base, chats, methods=["GET", "POST"]),
            Route(
                one,
                forwarding(chat),
                methods=["GET"] if paths.archive_by_post else ["GET", "PATCH"],
            ),
            Route(
                f"{one}/messages",
                forwarding(messages),
                methods=["POST"] if era is Era.A else ["GET", "POST"],
            ),
            Route(f"{one}/messages/{{message}}", forwarding(edit), methods=["PATCH"]),
            Route(f"{one}/interrupt", forwarding(interrupt), methods=["POST"]),
            Route(f"{one}/queue/{{queued}}", forwarding(queued), methods=["DELETE"]),
            Route(f"{one}/queue/{{queued}}/promote", forwarding(promote), methods=["POST"]),
            WebSocketRoute(f"{one}/stream", StreamEndpoint(sim)),
            WebSocketRoute(f"{base}/watch", WatchEndpoint(sim)),
        ]
        if era is Era.D:
            table.append(Route(f"{one}/tool-results", forwarding(tool_results), methods=["POST"]))
        if paths.archive_by_post:
            table += [
                Route(f"{one}/archive", forwarding(archiver(True)), methods=["POST"]),
                Route(f"{one}/unarchive", forwarding(archiver(False)), methods=["POST"]),
            ]
        return table

    # Era C (v2.37) serves the chats API under both /api/v2 and /api/experimental (section
    # 1.4's dual mount); every other era under its one base.
    # The relay is at one path in every era, the dialer's (protocol/constants.py).
    relaying: list[BaseRoute] = [WebSocketRoute(RELAY_PATH, relay)]
    if era is Era.C:
        return mounted(paths.base) + mounted(EXPERIMENTAL_BASE) + relaying
    return mounted(paths.base) + relaying
