"""Model and provider routes in-process, per era: the owner's catalog, members' refusals,
reserved and removed paths."""

from __future__ import annotations

from starlette.testclient import TestClient

from loadtest.protocol.ai_providers import LEGACY_GONE, LEGACY_GONE_STATUS
from loadtest.protocol.eras import AI_PROVIDERS, EXPERIMENTAL_BASE, Era, org_models
from loadtest.sim.errors import FORBIDDEN, NOT_FOUND
from tests.unit.sim.apps import client, sim_of


def _member_token(sim_http: TestClient) -> dict[str, str]:
    body = {"email": "m@b.co", "username": "member1", "password": "s3cret-Passw0rd!"}
    user_id = sim_http.post("/api/v2/users", json=body).json()["id"]
    return {"Coder-Session-Token": sim_http.post(f"/api/v2/users/{user_id}/keys").json()["key"]}


def test_era_d_lists_the_default_model_and_refuses_members_changes() -> None:
    sim = sim_of(Era.D)
    with client(sim) as http:
        default = sim.catalog.default_model()
        assert default is not None
        listed = http.get(org_models()).json()
        assert [m["id"] for m in listed["models"]] == [default.id]
        assert [p["id"] for p in listed["providers"]] == list(sim.catalog.providers)
        providers = http.get(AI_PROVIDERS)
        assert providers.status_code == 200 and len(providers.json()) == len(sim.catalog.providers)
        member = _member_token(http)
        assert http.get(org_models(), headers=member).status_code == 200  # members may read
        refused = http.get(AI_PROVIDERS, headers=member)
        assert refused.status_code == 403 and refused.json()["message"] == FORBIDDEN
        assert http.get(org_models("other")).status_code == 404


def test_era_d_reserves_model_configs_under_chats() -> None:
    with client(sim_of(Era.D)) as http:
        answer = http.get("/api/v2/chats/model-configs")
        assert answer.status_code == 404 and answer.json()["message"] == NOT_FOUND


def test_era_c_answers_410_on_the_legacy_provider_paths() -> None:
    with client(sim_of(Era.C)) as http:
        answer = http.post(f"{EXPERIMENTAL_BASE}/providers", json={})
        assert answer.status_code == LEGACY_GONE_STATUS and answer.json()["message"] == LEGACY_GONE


def test_era_b_model_configs_are_read_by_all_and_written_by_the_owner() -> None:
    sim = sim_of(Era.B)
    with client(sim) as http:
        base = sim.paths.base
        listed = http.get(f"{base}/model-configs").json()
        assert [m["id"] for m in listed] == list(sim.catalog.models)
        member = _member_token(http)
        assert http.get(f"{base}/model-configs", headers=member).status_code == 200
        assert http.post(f"{base}/model-configs", json={}, headers=member).status_code == 403
        model = listed[0]["id"]
        assert http.delete(f"{base}/model-configs/{model}").status_code == 204
        assert http.get(f"{base}/model-configs").json() == []
