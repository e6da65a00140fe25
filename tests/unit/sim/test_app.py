"""The app's own answers: Coder's JSON for an unknown route or method, and its lifespan."""

from __future__ import annotations

from loadtest.sim.errors import ROUTE_NOT_FOUND
from tests.unit.sim.apps import client, create_body, sim_of


def test_unknown_routes_and_methods_answer_in_coders_shape() -> None:
    with client(sim_of()) as http:
        missing = http.get("/api/v2/nothing-here")
        assert missing.status_code == 404 and missing.json() == {"message": ROUTE_NOT_FOUND}
        wrong = http.delete("/api/v2/buildinfo")
        assert wrong.status_code == 405 and wrong.json() == {"message": "Method not allowed."}


def test_an_api_error_is_rendered_with_its_status_and_headers() -> None:
    with client(sim_of()) as http:
        unsigned = http.get("/api/v2/users/me", headers={"Coder-Session-Token": ""})
        assert unsigned.status_code == 401
        assert unsigned.headers["www-authenticate"] == "Coder-Session-Token"
        assert "message" in unsigned.json()


def test_leaving_the_lifespan_stops_every_running_turn() -> None:
    sim = sim_of(requires_action_ratio=1.0)  # turns that wait for the client forever
    with client(sim) as http:
        assert http.post(sim.paths.base, json=create_body()).status_code == 201
        assert sim.player.tasks
    assert not sim.player.tasks
