"""The ``/__sim`` hooks in-process: counts and reset, state, runtime config with errors by
field, minted accounts, and a crash refused outside a cluster."""

from __future__ import annotations

from loadtest.sim.admin import MAX_MINTED
from loadtest.sim.errors import VALIDATION_FAILED
from tests.unit.sim.apps import client, create_body, sim_of


def test_counts_follow_a_turn_and_reset_zeroes_them() -> None:
    sim = sim_of()
    with client(sim) as http:
        http.post(sim.paths.base, json=create_body())
        state = http.get("/__sim/state").json()
        assert (state["chats"], state["unarchived_chats"]) == (1, 1)
        assert state["models"] == list(sim.catalog.models)
        assert "totals" in http.get("/__sim/counts").json()
        assert http.post("/__sim/reset").status_code == 204
        assert sim.counters.wire() == sim_of().counters.wire()


def test_config_patches_apply_and_bad_values_are_named() -> None:
    sim = sim_of()
    with client(sim) as http:
        patched = http.patch("/__sim/config", json={"parts_per_turn": 5})
        assert patched.status_code == 200 and patched.json()["parts_per_turn"] == 5
        assert sim.config.parts_per_turn == 5
        bad = http.patch("/__sim/config", json={"parts_per_turn": -1})
        assert bad.status_code == 400 and bad.json()["message"] == VALIDATION_FAILED
        assert bad.json()["validations"][0]["field"] == "parts_per_turn"
        assert sim.config.parts_per_turn == 5  # kept
        era_d = http.patch("/__sim/config", json={"error_kind": "startup_timeout"})
        assert era_d.status_code == 400 and era_d.json()["validations"][0]["field"] == "error_kind"


def test_accounts_are_minted_within_bounds() -> None:
    sim = sim_of()
    with client(sim) as http:
        tokens = http.post("/__sim/accounts", json={"count": 3}).json()["tokens"]
        assert len(set(tokens)) == 3
        for token in tokens:
            assert (
                http.get("/api/v2/users/me", headers={"Coder-Session-Token": token}).status_code
                == 200
            )
        for count in (0, MAX_MINTED + 1, True, "2"):
            refused = http.post("/__sim/accounts", json={"count": count})
            assert refused.status_code == 400
            assert refused.json()["validations"][0]["field"] == "count"


def test_crash_is_for_replicas_only_and_metrics_are_served() -> None:
    with client(sim_of()) as http:
        crash = http.post("/__sim/crash")
        assert crash.status_code == 404 and "--replicas" in crash.json()["message"]
        assert http.get("/metrics").headers["content-type"].startswith("text/plain")
        assert isinstance(http.get("/__sim/metrics").json(), dict)
