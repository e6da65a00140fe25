"""Provider and model-config routes ``chatload setup`` drives, per era.

Eras a/b: ``{base}/providers``, ``{base}/model-configs``, ``{base}/models``. Era d:
``/api/v2/ai/providers`` and ``/api/v2/organizations/{org}/chats/models`` (codersdk at
004053e8); it also keeps ``/api/v2/chats/providers`` and ``/model-configs`` mounted (era C's
dual mount), which is where ``ChatPaths.providers()`` points for era d.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from loadtest.protocol.eras import Era
from loadtest.protocol.models import (
    CreateChatModelConfigRequest,
    CreateChatProviderConfigRequest,
    UpdateChatProviderConfigRequest,
)
from loadtest.sim.accounts import ORGANIZATION_ID, User
from loadtest.sim.errors import forbidden, not_found
from loadtest.sim.web import JSON, read_body, read_request

if TYPE_CHECKING:
    from loadtest.sim.state import Sim


def _admin(user: User) -> None:
    if not user.owner:
        raise forbidden()


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

    async def org_models(request: Request) -> Response:
        user = sim.request_user(request)
        _org(request)
        if request.method == "GET":
            return JSON(catalog.org_models_wire())
        _admin(user)
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

    table: list[BaseRoute] = [
        Route(f"{base}/providers", providers, methods=["GET", "POST"]),
        Route(f"{base}/providers/{{provider}}", provider, methods=["PATCH", "DELETE"]),
        Route(f"{base}/model-configs", model_configs, methods=["GET", "POST"]),
        Route(f"{base}/model-configs/{{model}}", model_config, methods=["PATCH", "DELETE"]),
    ]
    if sim.era is not Era.D:
        return [*table, Route(f"{base}/models", models)]
    org = "/api/v2/organizations/{org}/chats/models"
    return [
        *table,
        Route("/api/v2/ai/providers", ai_providers, methods=["GET", "POST"]),
        Route("/api/v2/ai/providers/{provider}", ai_provider, methods=["GET", "PATCH", "DELETE"]),
        Route(org, org_models, methods=["GET", "POST"]),
        Route(f"{org}/{{model}}", org_model, methods=["GET", "PATCH", "DELETE"]),
    ]
