"""Deployment and user routes in-process: bootstrap (first user, login), users, keys, and
Coder's validation and permission answers."""

from __future__ import annotations

from loadtest.protocol.eras import SIMULATED_VERSIONS, Era
from loadtest.sim.accounts import ORGANIZATION_ID
from loadtest.sim.api_users import DEPLOYMENT_ID
from loadtest.sim.errors import FORBIDDEN, VALIDATION_FAILED
from tests.unit.sim.apps import client, sim_of

FIRST = {"email": "a@b.co", "username": "admin2", "password": "s3cret-Passw0rd!", "name": ""}


def test_buildinfo_needs_no_sign_in_and_names_the_eras_version() -> None:
    with client(sim_of(Era.C)) as http:
        info = http.get("/api/v2/buildinfo", headers={"Coder-Session-Token": ""}).json()
    assert info["version"] == SIMULATED_VERSIONS[Era.C] and info["deployment_id"] == DEPLOYMENT_ID


def test_experiments_list_agents_before_era_d_only() -> None:
    with client(sim_of(Era.C)) as http:
        assert http.get("/api/v2/experiments").json() == ["agents"]
    with client(sim_of(Era.D)) as http:
        assert http.get("/api/v2/experiments").json() == []


def test_a_fresh_deployment_takes_a_first_user_once_then_logs_it_in() -> None:
    sim = sim_of(Era.D)
    sim.accounts.users.clear()
    with client(sim) as http:
        assert http.get("/api/v2/users/first").status_code == 404
        made = http.post("/api/v2/users/first", json=FIRST)
        assert made.status_code == 201 and made.json()["organization_id"] == ORGANIZATION_ID
        assert http.get("/api/v2/users/first").status_code == 200
        again = http.post("/api/v2/users/first", json=FIRST)
        assert again.status_code == 409
        login = {"email": FIRST["email"], "password": FIRST["password"]}
        token = http.post("/api/v2/users/login", json=login).json()["session_token"]
        me = http.get("/api/v2/users/me", headers={"Coder-Session-Token": token})
        assert me.status_code == 200 and me.json()["username"] == "admin2"
        wrong = http.post("/api/v2/users/login", json={**login, "password": "nope-nope-nope"})
        assert (
            wrong.status_code == 401 and wrong.json()["message"] == "Incorrect email or password."
        )


def test_missing_required_fields_are_named_in_validations() -> None:
    with client(sim_of()) as http:
        answer = http.post("/api/v2/users", json={"email": "", "password": "x"})
    assert answer.status_code == 400 and answer.json()["message"] == VALIDATION_FAILED
    assert {v["field"] for v in answer.json()["validations"]} == {"email", "username"}


def test_the_owner_makes_members_who_cannot_make_users_nor_delete_themselves() -> None:
    with client(sim_of()) as http:
        body = {"email": "m@b.co", "username": "member1", "password": "s3cret-Passw0rd!"}
        member = http.post("/api/v2/users", json=body)
        assert member.status_code == 201
        user_id = member.json()["id"]
        key = http.post(f"/api/v2/users/{user_id}/keys")
        assert key.status_code == 201
        as_member = {"Coder-Session-Token": key.json()["key"]}
        assert http.get("/api/v2/users/me", headers=as_member).json()["id"] == user_id
        refused = http.post("/api/v2/users", json={**body, "username": "x2"}, headers=as_member)
        assert refused.status_code == 403 and refused.json()["message"] == FORBIDDEN
        assert http.post("/api/v2/users", json=body).status_code == 409  # exists
        assert http.delete(f"/api/v2/users/{user_id}").json() == {
            "message": "User has been deleted!"
        }
        assert http.get(f"/api/v2/users/{user_id}").status_code == 404
        assert http.delete("/api/v2/users/me").status_code == 403


def test_only_the_default_organization_exists() -> None:
    with client(sim_of()) as http:
        assert http.get("/api/v2/organizations/default").json()["id"] == ORGANIZATION_ID
        assert http.get(f"/api/v2/organizations/{ORGANIZATION_ID}").status_code == 200
        assert http.get("/api/v2/organizations/other").status_code == 404
