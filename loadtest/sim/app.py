"""The Starlette application serving a simulated deployment's state: its routes and errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from loadtest.sim import api_chats, api_models, api_users, api_workspaces
from loadtest.sim.admin import admin_routes
from loadtest.sim.errors import ROUTE_NOT_FOUND, ApiError
from loadtest.sim.state import Sim
from loadtest.sim.web import JSON, error_response


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return JSON({"message": "Method not allowed."}, status_code=405)
    return JSON({"message": ROUTE_NOT_FOUND}, status_code=exc.status_code)


def build_app(sim: Sim) -> Starlette:
    routes: list[BaseRoute] = [
        *admin_routes(sim),
        *api_users.routes(sim),
        *api_workspaces.routes(sim),
        *api_models.routes(sim),
        *api_chats.routes(sim),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if sim.replica is not None:
            await sim.replica.start(sim.external_url)
        yield
        await sim.player.close()
        if sim.replica is not None:
            await sim.replica.close()

    return Starlette(
        routes=routes,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
        lifespan=lifespan,
    )
