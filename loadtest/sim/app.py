"""The simulator's state (``Sim``) and the Starlette application serving it."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from loadtest.protocol.eras import PATHS, Era
from loadtest.sim import api_chats, api_models, api_users
from loadtest.sim.accounts import Accounts, User
from loadtest.sim.admin import admin_routes
from loadtest.sim.auth import Auth, RateLimiter
from loadtest.sim.catalog import Catalog
from loadtest.sim.chats import ChatStore
from loadtest.sim.config import SimConfig
from loadtest.sim.errors import ROUTE_NOT_FOUND, ApiError
from loadtest.sim.hub import Counters, Hub
from loadtest.sim.runner import Runner
from loadtest.sim.web import JSON, error_response


def _now() -> datetime:
    return datetime.now(UTC)


class Sim:
    """Everything one simulated deployment holds: accounts, catalog, chats, streams."""

    def __init__(
        self, era: Era, config: SimConfig, token: str | None, *, default_model: bool = True
    ) -> None:
        self.era = era
        self.paths = PATHS[era]
        self.config = config
        self.clock = _now
        self.external_url = ""
        self.accounts = Accounts(_now, token)
        self.catalog = Catalog(_now, default_model)
        self.store = ChatStore(era, _now)
        self.hub = Hub()
        self.counters = Counters()
        self.rng = random.Random(config.seed)
        self.limiter = RateLimiter(lambda: self.config.rate_limit_per_minute)
        self.auth = Auth(self.accounts, self.limiter)
        self.runner = Runner(self)

    def reconfigure(self, config: SimConfig) -> None:
        """Adopt a new config; a new seed restarts the random source, limits start afresh."""
        if config.seed is not None and config.seed != self.config.seed:
            self.rng.seed(config.seed)
        self.config = config
        self.limiter.reset()

    # ------------------------------------------------------------ helpers for handlers

    def chat_user(
        self, headers: Mapping[str, str], cookies: Mapping[str, str], query: Mapping[str, str]
    ) -> User:
        """An authenticated caller of a chats route, behind the ``agents`` experiment."""
        user = self.auth.user(headers, cookies, query)
        if self.era is not Era.D and not self.config.agents_experiment:
            raise ApiError(403, "Chats functionality requires enabling the 'agents' experiment.")
        return user

    def request_user(self, request: Request, *, chats: bool = False) -> User:
        fetch = self.chat_user if chats else self.auth.user
        return fetch(request.headers, request.cookies, request.query_params)


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
        *api_models.routes(sim),
        *api_chats.routes(sim),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await sim.runner.close()

    return Starlette(
        routes=routes,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
        lifespan=lifespan,
    )
