"""Authentication, bootstrap of a fresh deployment, users, the experiment gate and the
per-user rate limit of ``chatload sim``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from tests.integration.conftest import ORGANIZATION, TOKEN, EraSim, Sim, create_body

SIGNED_OUT = "You are signed out or your session has expired. Please sign in again to continue."


def test_token_transports(era_a: EraSim) -> None:
    path = era_a.base
    with httpx.Client(base_url=era_a.url) as anonymous:
        assert anonymous.get(path, headers={"Coder-Session-Token": TOKEN}).status_code == 200
        with httpx.Client(base_url=era_a.url, cookies={"coder_session_token": TOKEN}) as cookie:
            assert cookie.get(path).status_code == 200
        assert anonymous.get(path, params={"coder_session_token": TOKEN}).status_code == 200
        assert anonymous.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        missing = anonymous.get(path)
        assert missing.status_code == 401
        assert missing.json() == {
            "message": SIGNED_OUT,
            "detail": 'Cookie "coder_session_token" or query parameter must be provided.',
        }
        assert missing.headers["www-authenticate"]
        wrong = anonymous.get(path, headers={"Coder-Session-Token": "nope-nope"})
        assert (wrong.status_code, wrong.json()["message"]) == (401, SIGNED_OUT)


def test_stream_needs_a_token(era_b: EraSim) -> None:
    chat = era_b.create_chat()
    with pytest.raises(InvalidStatus) as refused:
        era_b.stream(f"{era_b.base}/{chat['id']}/stream", token="wrong-token")
    assert refused.value.response.status_code == 401
    with era_b.stream(f"{era_b.base}/{chat['id']}/stream?coder_session_token={TOKEN}") as stream:
        stream.until(lambda e: e["type"] == "status")


def test_experiment_gate(era_a: EraSim) -> None:
    assert era_a.api.get("/api/v2/experiments").json() == ["agents"]
    era_a.patch(agents_experiment=False)
    assert era_a.api.get("/api/v2/experiments").json() == []
    reply = era_a.api.get(era_a.base)
    assert reply.status_code == 403
    assert reply.json() == {
        "message": "Chats functionality requires enabling the 'agents' experiment."
    }


def test_experiments_in_era_d(era_d: EraSim) -> None:
    assert era_d.api.get("/api/v2/experiments").json() == []


def test_rate_limit(era_b: EraSim) -> None:
    era_b.patch(rate_limit_per_minute=3)
    replies = [era_b.api.get(era_b.base) for _ in range(4)]
    assert [r.status_code for r in replies] == [200, 200, 200, 429]
    assert replies[-1].json() == {
        "message": "You've been rate limited for sending more than 3 requests in 1m0s."
    }
    bypass = era_b.api.get(era_b.base, headers={"X-Coder-Bypass-Ratelimit": "true"})
    assert bypass.status_code == 200


def test_buildinfo_matches_the_era(any_era: EraSim) -> None:
    info = httpx.get(f"{any_era.url}/api/v2/buildinfo").json()
    expected = {"a": "v2.31.0", "b": "v2.34.0", "d": "v2.38.0"}[any_era.era]
    assert info["version"].startswith(expected + "+")
    assert info["external_url"] == any_era.url


@pytest.fixture(scope="module")
def fresh() -> Iterator[Sim]:
    sim = Sim(["--era", "a", "--rate-limit", "-1", "--log-level", "debug"], token=None)
    yield sim
    sim.stop()


def test_fresh_deployment_bootstrap(fresh: Sim) -> None:
    http = fresh.http
    assert http.get("/api/v2/users/first").status_code == 404
    assert http.get("/api/v2/users/me").status_code == 401
    weak = http.post(
        "/api/v2/users/first", json={"email": "a@b.c", "username": "admin", "password": "x"}
    )
    assert (weak.status_code, weak.json()["message"]) == (400, "Password not strong enough!")
    assert weak.json()["validations"][0]["field"] == "password"
    first = {"email": "admin@example.com", "username": "admin", "password": "s3cret-Passw0rd!"}
    created = http.post("/api/v2/users/first", json=first)
    assert created.status_code == 201
    assert created.json()["organization_id"] == ORGANIZATION
    assert http.post("/api/v2/users/first", json=first).status_code == 409
    assert http.get("/api/v2/users/first").json() == {
        "message": "The initial user has already been created!"
    }
    wrong = http.post("/api/v2/users/login", json={"email": first["email"], "password": "no"})
    assert (wrong.status_code, wrong.json()["message"]) == (401, "Incorrect email or password.")
    login = http.post(
        "/api/v2/users/login", json={"email": first["email"], "password": first["password"]}
    )
    assert login.status_code == 201
    session = fresh.client(login.json()["session_token"])
    me = session.get("/api/v2/users/me").json()
    assert me["organization_ids"] == [ORGANIZATION] and me["username"] == "admin"
    key = session.post("/api/v2/users/me/keys")
    assert key.status_code == 201
    owner = fresh.client(key.json()["key"])
    assert owner.get("/api/v2/users/me").json()["id"] == created.json()["user_id"]
    assert owner.get("/api/v2/experiments").json() == ["agents"]
    assert owner.get("/api/v2/organizations/default").json()["id"] == ORGANIZATION


def test_users_and_per_owner_chats(fresh: Sim) -> None:
    login = fresh.http.post(
        "/api/v2/users/login",
        json={"email": "admin@example.com", "password": "s3cret-Passw0rd!"},
    )
    owner = fresh.client(login.json()["session_token"])
    member_body = {
        "email": "member@example.com",
        "username": "member-1",
        "password": "an0ther-Passw0rd!",
        "organization_ids": [ORGANIZATION],
    }
    created = owner.post("/api/v2/users", json=member_body)
    assert created.status_code == 201
    assert owner.post("/api/v2/users", json=member_body).status_code == 409
    member_id = created.json()["id"]
    key = owner.post(f"/api/v2/users/{member_id}/keys")
    assert key.status_code == 201
    member = fresh.client(key.json()["key"])
    assert member.post("/api/v2/users", json={**member_body, "username": "x"}).status_code == 403
    chat = member.post("/api/experimental/chats", json=create_body("a")).json()
    assert owner.get(f"/api/experimental/chats/{chat['id']}").status_code == 404
    assert chat["id"] not in [c["id"] for c in owner.get("/api/experimental/chats").json()]
    assert member.get(f"/api/experimental/chats/{chat['id']}").status_code == 200
    deleted = owner.delete("/api/v2/users/member-1")
    assert deleted.json() == {"message": "User has been deleted!"}
    assert member.get("/api/v2/users/me").status_code == 401
    me = owner.get("/api/v2/users/me").json()["id"]
    assert owner.delete(f"/api/v2/users/{me}").json()["message"] == "You cannot delete yourself!"


def test_tokens_never_logged(fresh: Sim) -> None:
    login = fresh.http.post(
        "/api/v2/users/login",
        json={"email": "admin@example.com", "password": "s3cret-Passw0rd!"},
    )
    token = login.json()["session_token"]
    fresh.client(token).get("/api/v2/users/me")
    fresh.client(None).get("/api/v2/users/me", params={"coder_session_token": token})
    chat = fresh.client(token).post("/api/experimental/chats", json=create_body("a")).json()
    query = f"/api/experimental/chats/{chat['id']}/stream?coder_session_token={token}"
    with fresh.stream(query, token="ignored-header") as stream:
        stream.until(lambda e: e["type"] == "status")
    with fresh.stream(f"/api/experimental/chats/{chat['id']}/stream", token=token) as stream:
        stream.until(lambda e: e["type"] == "status")
    code, _, out, err = fresh.stop()
    assert code == 0
    assert token not in out and token not in err
    assert "s3cret-Passw0rd!" not in out + err
