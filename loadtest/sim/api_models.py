"""Provider and model-config routes ``chatload setup`` drives, per era (section 8.2, §9.8).

Eras a/b: ``{base}/providers``, ``{base}/model-configs``, ``{base}/models``. Era c (v2.37,
coderd at 004053e8): the legacy ``/api/experimental/chats/providers`` and
``/user-provider-configs`` answer 410 (``protocol/ai_providers.py``: use AI providers), so
providers are AI providers at ``/api/v2/ai/providers``, and models the organization's at
``/api/v2/organizations/{org}/chats/models`` (by ``ai_provider_id``, with Coder's 400s); it
reserves ``/api/v2/chats/providers``, ``/model-configs`` and ``/user-provider-configs`` (404).
Era d: the same AI providers and organization models; no ``/chats/providers`` at all, and
only ``/api/v2/chats/model-configs`` reserved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from loadtest.protocol.ai_providers import LEGACY_COLLECTIONS, LEGACY_GONE, LEGACY_GONE_STATUS
from loadtest.protocol.eras import AI_PROVIDERS, EXPERIMENTAL_BASE, V2_BASE, Era, org_models
from loadtest.protocol.models import (
    CreateChatModelConfigRequest,
    CreateChatProviderConfigRequest,
    UpdateChatProviderConfigRequest,
)
from loadtest.sim.accounts import ORGANIZATION_ID, User
from loadtest.sim.errors import ApiError, forbidden, not_found
from loadtest.sim.web import JSON, read_body, read_request

if TYPE_CHECKING:
    from loadtest.sim.state import Sim


def _admin(user: User) -> None:
    if not user.owner:
        raise forbidden()


#: Paths under ``/api/v2/chats`` an era reserves: they answer 404 (section 8.2) instead of
#: falling through to ``/chats/{chat}`` (a 400 for a bad UUID).
RESERVED: dict[Era, tuple[str, ...]] = {
    Era.C: ("providers", "model-configs", "user-provider-configs"),
    Era.D: ("model-configs",),
}
_ANY = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


def routes(sim: Sim) -> list[BaseRoute]:
    catalog = sim.catalog
    base = sim.paths.base

    async def providers(request: Request) -> Response:
        user = sim.request_user(request, chats=True)
        _admin(user)
        if request.method == "GET":
            return JSON([catalog.provider_config_wire(p) for p in catalog.providers.values()])
        create = await read_request(request, CreateChatProviderConfigRequest)
        provider = catalog.create_provider(create.wire())
        return JSON(catalog.provider_config_wire(provider), status_code=201)

    async def provider(request: Request) -> Response:
        user = sim.request_user(request, chats=True)
        _admin(user)
        found = catalog.provider(request.path_params["provider"])
        if request.method == "DELETE":
            catalog.delete_provider(found)
            return Response(status_code=204)
        update = await read_request(request, UpdateChatProviderConfigRequest)
        updated = catalog.update_provider(found, update.wire())
        return JSON(catalog.provider_config_wire(updated))

    async def model_configs(request: Request) -> Response:
        user = sim.request_user(request, chats=True)
        if request.method == "GET":
            return JSON([catalog.model_config_wire(m) for m in catalog.models.values()])
        _admin(user)
        create = await read_request(request, CreateChatModelConfigRequest)
        model = catalog.create_model(create.wire(), org_scoped=False)
        return JSON(catalog.model_config_wire(model), status_code=201)

    async def model_config(request: Request) -> Response:
        user = sim.request_user(request, chats=True)
        _admin(user)
        found = catalog.model(request.path_params["model"])
        if request.method == "DELETE":
            catalog.delete_model(found)
            return Response(status_code=204)
        updated = catalog.update_model(found, await read_body(request))
        return JSON(catalog.model_config_wire(updated))

    async def models(request: Request) -> Response:
        sim.request_user(request, chats=True)
        return JSON(catalog.models_wire())

    async def ai_providers(request: Request) -> Response:
        user = sim.request_user(request)
        _admin(user)
        if request.method == "GET":
            return JSON([catalog.ai_provider_wire(p) for p in catalog.providers.values()])
        created = catalog.create_ai_provider(await read_body(request))
        return JSON(catalog.ai_provider_wire(created), status_code=201)

    async def ai_provider(request: Request) -> Response:
        user = sim.request_user(request)
        _admin(user)
        found = catalog.provider(request.path_params["provider"])
        if request.method == "GET":
            return JSON(catalog.ai_provider_wire(found))
        if request.method == "DELETE":
            catalog.delete_provider(found)
            return Response(status_code=204)
        updated = catalog.update_provider(found, await read_body(request))
        return JSON(catalog.ai_provider_wire(updated))

    def _org(request: Request) -> None:
        if request.path_params["org"] not in ("default", ORGANIZATION_ID):
            raise not_found()

    async def organization_models(request: Request) -> Response:
        user = sim.request_user(request)
        _org(request)
        if request.method == "GET":
            return JSON(catalog.org_models_wire())
        _admin(user)
        # Eras c and d alike: the provider by ``ai_provider_id`` (protocol §9.8).
        model = catalog.create_model(await read_body(request), org_scoped=True)
        return JSON(catalog.chat_model_wire(model), status_code=201)

    async def org_model(request: Request) -> Response:
        user = sim.request_user(request)
        _org(request)
        found = catalog.model(request.path_params["model"])
        if request.method == "GET":
            return JSON(catalog.chat_model_wire(found))
        _admin(user)
        if request.method == "DELETE":
            catalog.delete_model(found)
            return Response(status_code=204)
        return JSON(catalog.chat_model_wire(catalog.update_model(found, await read_body(request))))

    async def reserved(request: Request) -> Response:
        """A reserved path: signed-in callers get Coder's JSON 404."""
        sim.request_user(request)
        raise not_found()

    async def gone(request: Request) -> Response:
        """A legacy provider route of era c: 410, use AI providers (protocol §9.8)."""
        sim.request_user(request)
        raise ApiError(LEGACY_GONE_STATUS, LEGACY_GONE)

    table: list[BaseRoute] = []
    if sim.era in (Era.A, Era.B):
        # Type-keyed ChatProviderConfig rows at {base}/providers (``ChatPaths.providers``).
        chat_providers = sim.paths.providers()
        table += [
            Route(chat_providers, providers, methods=["GET", "POST"]),
            Route(f"{chat_providers}/{{provider}}", provider, methods=["PATCH", "DELETE"]),
        ]
    if sim.era is Era.C:
        for name in LEGACY_COLLECTIONS:
            table += [
                Route(f"{EXPERIMENTAL_BASE}/{name}", gone, methods=_ANY),
                Route(f"{EXPERIMENTAL_BASE}/{name}/{{rest:path}}", gone, methods=_ANY),
            ]
    if sim.era in (Era.A, Era.B):
        return [
            *table,
            Route(f"{base}/model-configs", model_configs, methods=["GET", "POST"]),
            Route(f"{base}/model-configs/{{model}}", model_config, methods=["PATCH", "DELETE"]),
            Route(f"{base}/models", models),
        ]
    for name in RESERVED[sim.era]:
        table += [
            Route(f"{V2_BASE}/{name}", reserved, methods=_ANY),
            Route(f"{V2_BASE}/{name}/{{rest:path}}", reserved, methods=_ANY),
        ]
    org = org_models("{org}")
    return [
        *table,
        Route(AI_PROVIDERS, ai_providers, methods=["GET", "POST"]),
        Route(f"{AI_PROVIDERS}/{{provider}}", ai_provider, methods=["GET", "PATCH", "DELETE"]),
        Route(org, organization_models, methods=["GET", "POST"]),
        Route(f"{org}/{{model}}", org_model, methods=["GET", "PATCH", "DELETE"]),
    ]
