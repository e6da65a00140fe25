"""``/__sim``: unauthenticated test and benchmark hooks (counts, state, runtime config, hoses),
and ``/metrics``, the daemon's Prometheus metrics (unauthenticated, as Coder's own port)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pydantic
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from loadtest.config import patched
from loadtest.sim.errors import VALIDATION_FAILED, ApiError
from loadtest.sim.firehose import FirehoseEndpoint, TurnhoseEndpoint
from loadtest.sim.web import JSON, read_body

#: Accounts one ``/__sim/accounts`` call makes at most.
MAX_MINTED = 100_000

if TYPE_CHECKING:
    from loadtest.sim.state import Sim


def admin_routes(sim: Sim) -> list[BaseRoute]:
    async def counts(request: Request) -> Response:
        counts = sim.counters.wire()
        counts["totals"]["watch_events"] = sim.watch.wire()
        if sim.replica is not None:
            counts["replica"] = sim.replica.counts()
        return JSON(counts)

    async def state(request: Request) -> Response:
        """What exists now, so tests can check that a teardown left nothing behind."""
        chats = sim.store.chats.values()
        return JSON(
            {
                "chats": len(chats),
                "unarchived_chats": sum(not chat.archived for chat in chats),
                "providers": [p.id for p in sim.catalog.providers.values()],
                "models": [m.id for m in sim.catalog.models.values()],
                "users": len(sim.accounts.users),
            }
        )

    async def reset(request: Request) -> Response:
        sim.counters.reset()
        sim.watch.sent.clear()
        return Response(status_code=204)

    async def config(request: Request) -> Response:
        if request.method == "PATCH":
            try:
                sim.reconfigure(patched(sim.config, await read_body(request)))
            except pydantic.ValidationError as exc:
                problems = [
                    (".".join(str(p) for p in error["loc"]), error["msg"]) for error in exc.errors()
                ]
                raise ApiError(400, VALIDATION_FAILED, validations=problems) from None
        return JSON(sim.config.model_dump(mode="json"))

    async def prometheus(request: Request) -> Response:
        """The chat daemon's metrics under Coder's names (``sim/metrics.py``)."""
        return Response(generate_latest(sim.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def metrics(request: Request) -> Response:
        """The same observations as plain figures, for tests to compare with a scrape."""
        return JSON(sim.metrics.figures())

    async def accounts(request: Request) -> Response:
        """``{"count": N}`` -> ``{"tokens": [...]}``: N members to log simulated users in as
        (``chatload run`` against the embedded simulator gives each user its own)."""
        body = await read_body(request)
        count = body.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_MINTED:
            raise ApiError(
                400, VALIDATION_FAILED, validations=[("count", f"a whole number 1..{MAX_MINTED}")]
            )
        return JSON({"tokens": sim.accounts.mint(count)}, status_code=201)

    async def crash(request: Request) -> Response:
        """A replica dies at once, as a killed process: no close frames, no goodbyes."""
        if sim.replica is None:
            raise ApiError(404, "Not a replica: start the simulator with --replicas.")
        os._exit(137)

    return [
        Route("/__sim/counts", counts),
        Route("/__sim/state", state),
        Route("/__sim/reset", reset, methods=["POST"]),
        Route("/__sim/config", config, methods=["GET", "PATCH"]),
        Route("/__sim/metrics", metrics),
        Route("/metrics", prometheus),
        WebSocketRoute("/__sim/firehose", FirehoseEndpoint(sim)),
        WebSocketRoute("/__sim/turnhose", TurnhoseEndpoint(sim)),
        Route("/__sim/crash", crash, methods=["POST"]),
        Route("/__sim/accounts", accounts, methods=["POST"]),
    ]
