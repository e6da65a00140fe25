"""The chats surface in-process: create, read, rename, post (queue, interrupt), interrupt,
promote and tool results, each with Coder's status codes and messages; a stream's first
frames over an in-process websocket."""

from __future__ import annotations

import pytest

from loadtest.protocol.constants import (
    BUSY_BEHAVIOR,
    MODEL_NOT_FOUND,
    NOTHING_TO_PROMOTE,
    TITLE_EMPTY,
    TITLE_TOO_LONG,
)
from loadtest.protocol.eras import Era
from loadtest.sim.errors import NOT_FOUND
from tests.unit.sim.apps import client, create_body, sim_of


def test_a_created_chat_is_listed_read_and_renamed() -> None:
    sim = sim_of(Era.D)
    with client(sim) as http:
        base = sim.paths.base
        made = http.post(base, json=create_body("first words"))
        assert made.status_code == 201
        chat_id = made.json()["id"]
        assert [c["id"] for c in http.get(base).json()] == [chat_id]
        assert http.get(f"{base}/{chat_id}").json()["id"] == chat_id
        assert http.patch(f"{base}/{chat_id}", json={"title": "  renamed "}).status_code == 204
        assert http.get(f"{base}/{chat_id}").json()["title"] == "renamed"
        empty = http.patch(f"{base}/{chat_id}", json={"title": "   "})
        assert empty.status_code == 400 and empty.json()["message"] == TITLE_EMPTY
        long = http.patch(f"{base}/{chat_id}", json={"title": "x" * 201})
        assert long.status_code == 400 and long.json()["message"] == TITLE_TOO_LONG


def test_bad_ids_and_others_chats_answer_as_coder_does() -> None:
    sim = sim_of(Era.D)
    with client(sim) as http:
        base = sim.paths.base
        bad = http.get(f"{base}/not-a-uuid")
        assert bad.status_code == 400 and bad.json()["message"] == 'Invalid UUID "not-a-uuid".'
        assert bad.json()["detail"] == "invalid UUID length: 10"
        missing = http.get(f"{base}/00000000-0000-4000-8000-000000000000")
        assert missing.status_code == 404 and missing.json()["message"] == NOT_FOUND


def test_an_unknown_model_and_bad_json_are_400s() -> None:
    sim = sim_of(Era.D)
    with client(sim) as http:
        base = sim.paths.base
        unknown = http.post(base, json={**create_body(), "model_config_id": "nope"})
        assert unknown.status_code == 400 and unknown.json()["message"] == MODEL_NOT_FOUND
        garbled = http.post(base, content=b"{", headers={"content-type": "application/json"})
        assert garbled.status_code == 400
        assert garbled.json()["message"] == "Request body must be valid JSON."
        assert http.get("/__sim/state").json()["chats"] == 0  # nothing made by a refusal


def test_era_c_needs_the_organization_and_the_agents_experiment() -> None:
    sim = sim_of(Era.C)
    with client(sim) as http:
        body = create_body()
        del body["organization_id"]
        refused = http.post(sim.paths.base, json=body)
        assert (
            refused.status_code == 400
            and refused.json()["message"] == "organization_id is required."
        )
        other = http.post(sim.paths.base, json={**body, "organization_id": "x"})
        assert other.status_code == 403
    with client(sim_of(Era.C, agents_experiment=False)) as http:
        off = http.get(sim.paths.base)
        assert off.status_code == 403 and "'agents' experiment" in off.json()["message"]


@pytest.mark.parametrize("busy", ["later", 3])
def test_an_unknown_busy_behavior_is_refused_with_coders_words(busy: object) -> None:
    sim = sim_of(Era.D)
    with client(sim) as http:
        chat_id = http.post(sim.paths.base, json=create_body()).json()["id"]
        answer = http.post(
            f"{sim.paths.base}/{chat_id}/messages",
            json={"content": [{"type": "text", "text": "more"}], "busy_behavior": busy},
        )
        assert answer.status_code == 400
        assert (answer.json()["message"], answer.json()["detail"]) == BUSY_BEHAVIOR


def test_a_message_to_a_waiting_chat_runs_and_one_to_a_busy_chat_is_queued() -> None:
    sim = sim_of(Era.D, requires_action_ratio=1.0)  # the turn waits for tool results
    with client(sim) as http:
        base = sim.paths.base
        chat_id = http.post(base, json=create_body()).json()["id"]
        post = {"content": [{"type": "text", "text": "next"}], "busy_behavior": "queue"}
        queued = http.post(f"{base}/{chat_id}/messages", json=post).json()
        assert queued["queued"] is True
        entry = queued["queued_message"]["id"]
        promoted = http.post(f"{base}/{chat_id}/queue/{entry}/promote")
        assert promoted.status_code in (200, 202)
        none_left = http.post(f"{base}/{chat_id}/queue/{entry}/promote")
        assert none_left.status_code == 409 and none_left.json()["message"] == NOTHING_TO_PROMOTE


def test_interrupt_ends_the_turn_and_counts_it() -> None:
    sim = sim_of(Era.D, requires_action_ratio=1.0)
    with client(sim) as http:
        base = sim.paths.base
        chat_id = http.post(base, json=create_body()).json()["id"]
        answer = http.post(f"{base}/{chat_id}/interrupt")
        assert answer.status_code == 200 and answer.json()["status"] == "waiting"
        assert sim.counters.of(chat_id).turns_interrupted == 1
        assert chat_id not in sim.player.tasks


def test_a_stream_sends_the_chats_snapshot_first() -> None:
    sim = sim_of(Era.D, requires_action_ratio=1.0)
    with client(sim) as http:
        base = sim.paths.base
        chat_id = http.post(base, json=create_body()).json()["id"]
        with http.websocket_connect(f"{base}/{chat_id}/stream") as ws:
            first = ws.receive_json()
        assert isinstance(first, list) and first and first[0]["chat_id"] == chat_id
