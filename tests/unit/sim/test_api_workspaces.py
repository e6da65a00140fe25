"""``GET /api/v2/workspaces`` in-process: the owner's scaletest workspaces, filtered and paged."""

from __future__ import annotations

from tests.unit.sim.apps import client, sim_of


def test_workspaces_are_paged_with_the_count_of_all_that_match() -> None:
    with client(sim_of(workspaces=5)) as http:
        page = http.get("/api/v2/workspaces", params={"limit": 2, "offset": 1}).json()
        assert page["count"] == 5 and len(page["workspaces"]) == 2
        names = [w["name"] for w in page["workspaces"]]
        assert names == ["scaletest-1", "scaletest-2"]
        none = http.get("/api/v2/workspaces", params={"q": "owner:nobody"}).json()
        assert none == {"workspaces": [], "count": 0}


def test_workspaces_need_a_sign_in() -> None:
    with client(sim_of(workspaces=1)) as http:
        assert (
            http.get("/api/v2/workspaces", headers={"Coder-Session-Token": "bad"}).status_code
            == 401
        )
