"""Deployment and user routes: what a fresh Coder offers to be bootstrapped and probed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from loadtest.protocol.eras import SIMULATED_VERSIONS, Era
from loadtest.protocol.models import (
    BuildInfoResponse,
    CreateFirstUserRequest,
    CreateFirstUserResponse,
    LoginWithPasswordRequest,
    LoginWithPasswordResponse,
)
from loadtest.sim.accounts import ORGANIZATION_ID
from loadtest.sim.errors import VALIDATION_FAILED, ApiError, not_found
from loadtest.sim.web import JSON, read_body, read_request

if TYPE_CHECKING:
    from loadtest.sim.state import Sim

DEPLOYMENT_ID = "0fa1c0de-c0de-4c0d-8c0d-00000000d001"


def _required(request: BaseModel | dict[str, object], *names: str) -> None:
    """Coder's ``validate:"required"``: each named field must be a non-empty string."""
    get = request.get if isinstance(request, dict) else lambda name: getattr(request, name, None)
    missing = [name for name in names if not isinstance(get(name), str) or not get(name)]
    if missing:
        raise ApiError(
            400,
            VALIDATION_FAILED,
            validations=[
                (n, 'Validation failed for tag "required" with value: ""') for n in missing
            ],
        )


def routes(sim: Sim) -> list[BaseRoute]:
    async def buildinfo(request: Request) -> Response:
        info = BuildInfoResponse(
            version=sim.config.build_version or SIMULATED_VERSIONS[sim.era],
            external_url=sim.external_url,
            dashboard_url=sim.external_url,
            agent_api_version="1.0",
            provisioner_api_version="1.0",
            deployment_id=DEPLOYMENT_ID,
            webpush_public_key="",
        )
        return JSON(info.model_dump(mode="json"))

    async def experiments(request: Request) -> Response:
        sim.request_user(request)
        listed = sim.era is not Era.D and sim.config.agents_experiment
        return JSON(["agents"] if listed else [])

    async def first_user(request: Request) -> Response:
        if request.method == "GET":
            if sim.accounts.users:
                return JSON({"message": "The initial user has already been created!"})
            return JSON({"message": "The initial user has not been created!"}, status_code=404)
        first = await read_request(request, CreateFirstUserRequest)
        _required(first, "email", "username", "password")
        user = sim.accounts.create_first(
            first.username, first.email, first.name or "", first.password
        )
        made = CreateFirstUserResponse(user_id=user.id, organization_id=ORGANIZATION_ID)
        return JSON(made.wire(), status_code=201)

    async def login(request: Request) -> Response:
        login = await read_request(request, LoginWithPasswordRequest)
        _required(login, "email", "password")
        token = sim.accounts.login(login.email, login.password)
        return JSON(LoginWithPasswordResponse(session_token=token).wire(), status_code=201)

    async def create_user(request: Request) -> Response:
        actor = sim.request_user(request)
        body = await read_body(request)
        _required(body, "email", "username")
        user = sim.accounts.create(
            actor,
            str(body["username"]),
            str(body["email"]),
            str(body.get("name") or ""),
            str(body.get("password") or ""),
        )
        return JSON(user.wire(), status_code=201)

    async def user(request: Request) -> Response:
        actor = sim.request_user(request)
        ref = request.path_params["user"]
        if request.method == "DELETE":
            deleted = sim.accounts.delete(actor, ref)
            for chat_id in sim.store.drop_owner(deleted.id):
                await sim.player.stop(chat_id)
            return JSON({"message": "User has been deleted!"})
        return JSON(sim.accounts.lookup(actor, ref).wire())

    async def keys(request: Request) -> Response:
        actor = sim.request_user(request)
        key = sim.accounts.new_key(actor, request.path_params["user"])
        return JSON({"key": key}, status_code=201)

    async def organization(request: Request) -> Response:
        sim.request_user(request)
        if request.path_params["org"] not in ("default", ORGANIZATION_ID):
            raise not_found()
        created = "2026-01-01T00:00:00Z"
        return JSON(
            {
                "id": ORGANIZATION_ID,
                "name": "coder",
                "display_name": "Coder",
                "description": "Builtin default organization.",
                "icon": "",
                "is_default": True,
                "created_at": created,
                "updated_at": created,
            }
        )

    return [
        Route("/api/v2/buildinfo", buildinfo),
        Route("/api/v2/experiments", experiments),
        Route("/api/v2/users/first", first_user, methods=["GET", "POST"]),
        Route("/api/v2/users/login", login, methods=["POST"]),
        Route("/api/v2/users", create_user, methods=["POST"]),
        Route("/api/v2/users/{user}", user, methods=["GET", "DELETE"]),
        Route("/api/v2/users/{user}/keys", keys, methods=["POST"]),
        Route("/api/v2/users/{user}/keys/tokens", keys, methods=["POST"]),
        Route("/api/v2/organizations/{org}", organization),
    ]
