"""Protocol §9.8 over the wire: the simulator's era C answers 410 on the legacy provider
routes and organization model configs with Coder's body and errors, and ``chatload setup``
meeting that 410 switches to AI providers instead of failing (teardown finds them there)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loadtest.protocol.ai_providers import (
    AI_PROVIDER_ID_REQUIRED,
    CONTEXT_LIMIT_DETAIL,
    CONTEXT_LIMIT_REQUIRED,
    LEGACY_GONE,
    MODEL_REQUIRED,
)
from loadtest.protocol.eras import AI_PROVIDERS, org_models
from loadtest.runner.processes import SimProcess
from tests.integration.test_setup import MockLLM, chatload


@pytest.fixture
def era_c() -> Iterator[tuple[SimProcess, str]]:
    token = secrets.token_urlsafe(18)
    sim = SimProcess.start("c", token, {"rate_limit_per_minute": -1})
    yield sim, token
    sim.stop()


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE"])
def test_the_legacy_provider_routes_are_gone(era_c: tuple[SimProcess, str], method: str) -> None:
    sim, token = era_c
    headers = {"Coder-Session-Token": token}
    for path in (
        "/api/experimental/chats/providers",
        "/api/experimental/chats/providers/7b1d4e5f-0000-4000-8000-000000000001",
        "/api/experimental/chats/user-provider-configs",
    ):
        reply = httpx.request(method, sim.url + path, headers=headers, json={}, timeout=10)
        assert (reply.status_code, reply.json()) == (410, {"message": LEGACY_GONE}), path


def test_an_organization_model_takes_coders_body_and_answers_coders_errors(
    era_c: tuple[SimProcess, str],
) -> None:
    sim, token = era_c
    api = httpx.Client(base_url=sim.url, headers={"Coder-Session-Token": token}, timeout=10)
    provider = api.post(
        AI_PROVIDERS,
        json={"type": "openai-compat", "name": "conformance", "base_url": "http://127.0.0.1:9/v1"},
    ).json()
    models = org_models()
    full = {
        "ai_provider_id": provider["id"],
        "model": "conformance-model",
        "display_name": "Conformance",
        "enabled": True,
        "is_default": False,
        "context_limit": 4096,
        "compression_threshold": 70,
        "model_config": {},
    }
    for missing, want in (
        ({"ai_provider_id": ""}, {"message": AI_PROVIDER_ID_REQUIRED}),
        ({"model": ""}, {"message": MODEL_REQUIRED}),
        ({"context_limit": 0}, {"message": CONTEXT_LIMIT_REQUIRED, "detail": CONTEXT_LIMIT_DETAIL}),
    ):
        reply = api.post(models, json={**full, **missing})
        assert (reply.status_code, reply.json()) == (400, want), missing
    made = api.post(models, json=full)
    assert made.status_code == 201
    assert made.json()["ai_provider_id"] == provider["id"]
    assert made.json()["context_limit"] == 4096
    api.close()


def test_setup_meets_the_410_and_uses_ai_providers(
    era_c: tuple[SimProcess, str], tmp_path: Path
) -> None:
    sim, token = era_c
    mock = MockLLM()
    setup_file = tmp_path / "setup.json"
    try:
        setup = chatload(
            "setup", "--host", sim.url, "--llm-url", mock.url, "--out", str(setup_file),
            env={"CODER_SESSION_TOKEN": token},
        )  # fmt: skip
        assert setup.returncode == 0, setup.stdout + setup.stderr
        assert "AI provider openai-compat" in setup.stdout
        created = json.loads(setup_file.read_text())["created"]
        assert created["ai_provider"] is True
        listed = httpx.get(
            sim.url + AI_PROVIDERS, headers={"Coder-Session-Token": token}, timeout=10
        ).json()
        assert created["provider_id"] in [p["id"] for p in listed]
        teardown = chatload("teardown", "--setup", str(setup_file))
        assert teardown.returncode == 0, teardown.stderr
        assert f"deleted provider {created['provider_id']}" in teardown.stdout
        state = httpx.get(f"{sim.url}/__sim/state", timeout=10).json()
        assert created["provider_id"] not in state["providers"]
        assert created["model_config_id"] not in state["models"]
    finally:
        mock.stop()
