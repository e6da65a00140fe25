"""A simulated deployment served in-process (Starlette's test client): no socket, no clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.testclient import TestClient

from loadtest.protocol.constants import SESSION_TOKEN_HEADER
from loadtest.protocol.eras import Era
from loadtest.protocol.models import ChatMessagePart
from loadtest.sim.accounts import ORGANIZATION_ID, User
from loadtest.sim.app import build_app
from loadtest.sim.chat_state import ChatState
from loadtest.sim.config import SimConfig
from loadtest.sim.state import Sim

TOKEN = "owner-token-0123456789"
#: A member the tests that drive the store directly create chats as.
USER = User("u1", "u", "u@x", "U", None, False, datetime(2026, 12, 1, tzinfo=UTC))
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


def new_chat(sim: Sim, workspace_id: str | None = None) -> ChatState:
    """A chat of ``USER``'s created straight in the store (no HTTP), saying "hello"."""
    model = sim.catalog.default_model()
    assert model is not None
    content = [ChatMessagePart(type="text", text="hello")]
    chat, _ = sim.store.create(USER, content, model.id, workspace_id=workspace_id)
    return chat
