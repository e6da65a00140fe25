"""Provider and model-config routes ``chatload setup`` uses, per era."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loadtest.sim.errors import NOT_FOUND
from tests.integration.conftest import EraSim, create_body

#: Coder's JSON 404 for a reserved path (section 8.2).
RESERVED_404 = (404, {"message": NOT_FOUND})


@pytest.fixture(scope="module")
def bare_a() -> Iterator[EraSim]:
    """Era a with no provider or model config yet, as a fresh Coder."""
    sim = EraSim("a", ["--no-default-model", "--rate-limit", "-1", "--ttft", "0"])
    yield sim
    sim.stop()


def test_providers_and_model_configs_era_a(bare_a: EraSim) -> None:
    api, base = bare_a.api, bare_a.base
    reply = api.post(base, json=create_body("a"))
    assert (reply.status_code, reply.json()["message"]) == (
        400,
        "No default chat model config is configured.",
    )
    assert api.get(f"{base}/providers").json() == []
    assert api.post(f"{base}/providers", json={"provider": "nope"}).json()["message"] == (
        "Invalid provider."
    )
    body = {
        "provider": "openai-compat",
        "display_name": "Scaletest LLM Mock",
        "api_key": "k",
        "base_url": "http://127.0.0.1:9/v1",
        "enabled": True,
    }
    created = api.post(f"{base}/providers", json=body)
    assert created.status_code == 201
    provider = created.json()
    assert provider["provider"] == "openai-compat" and provider["source"] == "database"
    assert provider["has_api_key"] is True and provider["base_url"] == body["base_url"]
    conflict = api.post(f"{base}/providers", json=body)
    assert (conflict.status_code, conflict.json()["message"]) == (
        409,
        "Chat provider already exists.",
    )
    updated = api.patch(
        f"{base}/providers/{provider['id']}", json={"base_url": "http://127.0.0.1:8/v1"}
    )
    assert updated.status_code == 200 and updated.json()["base_url"] == "http://127.0.0.1:8/v1"
    model = {
        "provider": "openai-compat",
        "model": "scaletest-model",
        "display_name": "Scaletest Model",
    }
    reply = api.post(f"{base}/model-configs", json=model)
    assert (reply.status_code, reply.json()["message"]) == (400, "Context limit is required.")
    reply = api.post(
        f"{base}/model-configs", json={**model, "provider": "anthropic", "context_limit": 4096}
    )
    assert (reply.status_code, reply.json()["message"]) == (400, "Chat provider is not configured.")
    created = api.post(
        f"{base}/model-configs", json={**model, "context_limit": 4096, "is_default": False}
    )
    assert created.status_code == 201
    config = created.json()
    assert config["is_default"] is True, "the first model config becomes the default"
    assert config["compression_threshold"] == 70 and config["context_limit"] == 4096
    assert [c["id"] for c in api.get(f"{base}/model-configs").json()] == [config["id"]]
    renamed = api.patch(f"{base}/model-configs/{config['id']}", json={"display_name": "Renamed"})
    assert renamed.json()["display_name"] == "Renamed"
    # A provider with a base URL puts an LLM behind the chat; this one has none listening.
    api.patch(f"{base}/providers/{provider['id']}", json={"base_url": ""})
    chat = bare_a.create_chat()
    assert chat["last_model_config_id"] == config["id"]
    bare_a.wait_idle(chat["id"])
    catalog = api.get(f"{base}/models").json()
    assert catalog["providers"][0]["models"][0]["id"] == config["id"]
    assert api.delete(f"{base}/model-configs/{config['id']}").status_code == 204
    assert api.delete(f"{base}/providers/{provider['id']}").status_code == 204
    assert api.get(f"{base}/providers").json() == []


def test_era_d_ai_providers_and_organization_models(era_d: EraSim) -> None:
    api = era_d.api
    invalid = api.post("/api/v2/ai/providers", json={"type": "openai-compat", "name": "Bad Name"})
    assert invalid.status_code == 400
    assert invalid.json()["message"] == "Validation failed."
    fields = {v["field"] for v in invalid.json()["validations"]}
    assert fields == {"name", "base_url"}
    body = {
        "type": "openai-compat",
        "name": "coder-scaletest-mock",
        "display_name": "Scaletest LLM Mock",
        "enabled": True,
        "base_url": "http://127.0.0.1:9/v1",
        "api_keys": ["coder-scaletest"],
    }
    created = api.post("/api/v2/ai/providers", json=body)
    assert created.status_code == 201
    provider = created.json()
    try:
        assert provider["api_keys"][0]["masked"] != "coder-scaletest"
        assert api.post("/api/v2/ai/providers", json=body).status_code == 409
        assert api.get("/api/v2/ai/providers/coder-scaletest-mock").json()["id"] == provider["id"]
        patched = api.patch(
            "/api/v2/ai/providers/coder-scaletest-mock", json={"base_url": "http://127.0.0.1:8/v1"}
        )
        assert patched.json()["base_url"] == "http://127.0.0.1:8/v1"
        models = "/api/v2/organizations/default/chats/models"
        reply = api.post(models, json={"model": "scaletest-model", "context_limit": 4096})
        assert (reply.status_code, reply.json()["message"]) == (400, "AI provider ID is required.")
        model = api.post(
            models,
            json={
                "ai_provider_id": provider["id"],
                "model": "scaletest-model",
                "display_name": "Scaletest Model",
                "enabled": True,
                "is_default": False,
                "context_limit": 4096,
            },
        )
        assert model.status_code == 201
        chat_model = model.json()
        assert chat_model["ai_provider_id"] == provider["id"]
        assert chat_model["is_default"] is False
        listed = api.get(models).json()
        assert chat_model["id"] in [m["id"] for m in listed["models"]]
        assert provider["id"] in [p["id"] for p in listed["providers"]]
        assert api.get(f"{models}/{chat_model['id']}").json()["model"] == "scaletest-model"
        # A provider with a base URL puts an LLM behind the chat; this one has none listening.
        api.patch("/api/v2/ai/providers/coder-scaletest-mock", json={"base_url": ""})
        reply = api.post(era_d.base, json={**create_body("d"), "model_config_id": chat_model["id"]})
        assert reply.json()["last_model_config_id"] == chat_model["id"]
        era_d.wait_idle(reply.json()["id"])
        assert api.delete(f"{models}/{chat_model['id']}").status_code == 204
    finally:
        assert api.delete(f"/api/v2/ai/providers/{provider['id']}").status_code == 204


def test_members_cannot_manage_providers(bare_a: EraSim) -> None:
    api, base = bare_a.api, bare_a.base
    member = api.post(
        "/api/v2/users",
        json={"email": "m@example.com", "username": "m", "password": "Passw0rd!-long"},
    ).json()
    key = api.post(f"/api/v2/users/{member['id']}/keys").json()["key"]
    reply = bare_a.client(key).post(f"{base}/providers", json={"provider": "openai"})
    assert (reply.status_code, reply.json()) == (403, {"message": "Forbidden."})


@pytest.fixture(scope="module")
def bare_c() -> Iterator[EraSim]:
    """Era c (v2.37) with no provider or model yet."""
    sim = EraSim("c", ["--no-default-model", "--rate-limit", "-1", "--ttft", "0"])
    yield sim
    sim.stop()


@pytest.mark.parametrize("name", ["providers", "model-configs", "user-provider-configs"])
@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE"])
def test_era_c_reserves_the_v2_config_routes(bare_c: EraSim, name: str, method: str) -> None:
    """Section 8.2: 404 with Coder's body, for the collection and anything under it, rather
    than the ``/chats/{chat}`` route's 400 for a bad UUID."""
    for path in (f"/api/v2/chats/{name}", f"/api/v2/chats/{name}/anything"):
        reply = bare_c.api.request(method, path, json={"provider": "openai"})
        assert (reply.status_code, reply.json()) == RESERVED_404, path
    assert bare_c.http.get(f"/api/v2/chats/{name}").status_code == 401  # signed in first


def test_era_c_providers_are_ai_providers_and_models_organizational(bare_c: EraSim) -> None:
    """§9.8: the legacy experimental providers route is gone (410); providers are AI
    providers, and an organization model names one by ``ai_provider_id`` (a type won't do)."""
    api = bare_c.api
    legacy = api.post("/api/experimental/chats/providers", json={"provider": "openai-compat"})
    assert legacy.status_code == 410
    models = "/api/v2/organizations/default/chats/models"
    body = {
        "type": "openai-compat",
        "name": "coder-scaletest-mock",
        "enabled": True,
        "base_url": "http://127.0.0.1:9/v1",
        "api_keys": ["k"],
    }
    created = api.post("/api/v2/ai/providers", json=body)
    assert created.status_code == 201
    provider = created.json()
    try:
        by_type = api.post(
            models, json={"provider": "openai-compat", "model": "m", "context_limit": 4096}
        )
        assert (by_type.status_code, by_type.json()["message"]) == (
            400,
            "AI provider ID is required.",
        )
        by_id = api.post(
            models,
            json={"ai_provider_id": provider["id"], "model": "by-id", "context_limit": 4096},
        )
        assert by_id.status_code == 201 and by_id.json()["ai_provider_id"] == provider["id"]
        # A provider with a base URL puts an LLM behind the chat; this one has none listening.
        api.patch(f"/api/v2/ai/providers/{provider['id']}", json={"base_url": ""})
        chat = bare_c.create_chat()
        assert chat["last_model_config_id"] == by_id.json()["id"], "the first is the default"
        assert bare_c.wait_idle(chat["id"])["status"] == "waiting"
        assert api.delete(f"{models}/{by_id.json()['id']}").status_code == 204
    finally:
        assert api.delete(f"/api/v2/ai/providers/{provider['id']}").status_code == 204
    assert api.get("/api/v2/ai/providers").json() == []


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE"])
def test_era_d_reserves_model_configs_and_has_no_chat_providers(era_d: EraSim, method: str) -> None:
    """Section 8.2: only ``/model-configs`` is reserved (404); ``/chats/providers`` is no
    route at all, so a GET meets ``/chats/{chat}`` and nothing answers as a provider list."""
    for path in ("/api/v2/chats/model-configs", "/api/v2/chats/model-configs/x"):
        reply = era_d.api.request(method, path, json={})
        assert (reply.status_code, reply.json()) == RESERVED_404, path
    for path in ("/api/v2/chats/providers", "/api/v2/chats/user-provider-configs"):
        reply = era_d.api.request(method, path, json={"provider": "openai"})
        assert reply.status_code in (400, 404, 405), (path, reply.status_code)
        assert era_d.api.request(method, f"{path}/x", json={}).status_code in (404, 405)
