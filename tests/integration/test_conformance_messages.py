"""Spec §9.1 against the running simulator: a ``ChatMessage`` carries no ``revision`` and no
``queued_message_id``, on the stream or over REST, a promoted queued message included."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import EraSim

#: ``codersdk.ChatMessage``'s fields (spec §9.1): nothing else may appear on the wire.
CHAT_MESSAGE_FIELDS = {
    "id",
    "chat_id",
    "created_by",
    "model_config_id",
    "created_at",
    "role",
    "content",
    "usage",
}


def _messages(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event["message"] for event in events if event["type"] == "message"]


def test_no_message_carries_a_revision_or_a_queued_id(era_d: EraSim) -> None:
    sim = era_d
    sim.patch(ttft_ms={"dist": "constant", "value": 200})
    chat = sim.create_chat("first")
    with sim.open(chat["id"]) as stream:
        queued = sim.post(chat["id"], "second, queued then promoted").json()
        assert queued["queued"] is True
        assert not {"revision", "queued_message_id"} & set(queued["queued_message"])
        # Both turns run: the second starts from the queue, with no waiting between.
        stream.until(
            lambda e: (
                e["type"] == "message"
                and e["message"]["role"] == "user"
                and "promoted" in e["message"]["content"][0]["text"]
            )
        )
        stream.until_status("waiting")
        live = _messages(stream.events)
    with sim.open(chat["id"]) as late:  # a new stream's snapshot holds them all again
        late.until_status("waiting")
        snapshot = _messages(late.events)
    page = sim.api.get(f"{sim.base}/{chat['id']}/messages").json()["messages"]
    promoted = [m for m in live if m["role"] == "user"][-1]
    assert promoted["id"] in {m["id"] for m in page}
    assert len(snapshot) == len(page) >= 4  # two users, two answers
    for message in [*live, *snapshot, *page]:
        assert set(message) <= CHAT_MESSAGE_FIELDS, sorted(set(message) - CHAT_MESSAGE_FIELDS)
