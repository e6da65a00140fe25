"""``GET /api/v2/workspaces``: the simulated deployment's ``scaletest-`` workspaces."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from loadtest.sim.web import JSON
from loadtest.sim.workspaces import matching, page

if TYPE_CHECKING:
    from loadtest.sim.state import Sim


def routes(sim: Sim) -> list[BaseRoute]:
    async def workspaces(request: Request) -> Response:
        """``codersdk.WorkspacesResponse``: the page asked for, and how many match in all."""
        user = sim.request_user(request)
        query = request.query_params
        kept = matching(sim.workspaces(), query.get("q", ""), user.username)
        rows = page(kept, query.get("limit"), query.get("offset"))
        created = sim.clock()
        return JSON({"workspaces": [w.wire(created) for w in rows], "count": len(kept)})

    return [Route("/api/v2/workspaces", workspaces)]
