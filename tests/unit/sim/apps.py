"""A simulated deployment served in-process (Starlette's test client): no socket, no clock."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from loadtest.protocol.constants import SESSION_TOKEN_HEADER
from loadtest.protocol.eras import Era
from loadtest.sim.accounts import ORGANIZATION_ID
from loadtest.sim.app import build_app
from loadtest.sim.config import SimConfig
from loadtest.sim.state import Sim

TOKEN = "owner-token-0123456789"
#: Turns that end at once: no pacing, no tool steps.
FAST: dict[str, Any] = {"ttft_ms": 0, "part_gap_ms": 0, "parts_per_turn": 2, "seed": 1}


def sim_of(era: Era = Era.D, **config: Any) -> Sim:
    return Sim(era, SimConfig.model_validate({**FAST, **config}), TOKEN)


def client(sim: Sim) -> TestClient:
    """The app over ``sim``, signed in as its owner (use as a context manager: it runs the
    app's lifespan, so the player is closed at the end)."""
    return TestClient(build_app(sim), headers={SESSION_TOKEN_HEADER: TOKEN})


def create_body(text: str = "hi") -> dict[str, Any]:
    """A ``CreateChatRequest`` every era takes (eras that need the organization get it)."""
    return {"content": [{"type": "text", "text": text}], "organization_id": ORGANIZATION_ID}
