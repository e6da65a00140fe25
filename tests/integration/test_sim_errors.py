"""Protocol section 8.1, row by row: the era-D simulator answers each case with Coder's exact
status, message and detail. (Rows not simulated: the AI Gateway switched off, a non-root
chat's archive, a bad model config on send.)"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from websockets.exceptions import InvalidStatus

from tests.integration.conftest import EraSim, create_body, text

SLOW = {"ttft_ms": {"dist": "constant", "value": 5000}}


def expect(reply: httpx.Response, status: int, message: str, detail: str | None = None) -> None:
    assert reply.status_code == status, reply.text
    body: dict[str, Any] = reply.json()
    assert body["message"] == message, body
    assert body.get("detail") == detail, body


def test_message_rows(era_d: EraSim) -> None:
    sim = era_d
    chat = sim.create_chat()
    messages = f"{sim.base}/{chat['id']}/messages"
    expect(
        sim.api.post(messages, json={"content": []}),
        400,
        "Content is required.",
        "Content cannot be empty.",
    )
    expect(
        sim.api.post(messages, json={**text("x"), "busy_behavior": "later"}),
        400,
        "Invalid busy_behavior value.",
        'Must be "queue" or "interrupt".',
    )
    expect(
        sim.api.post(sim.base, json={**create_body("d"), "model_config_id": chat["id"]}),
        400,
        "Invalid model_config_id: model config not found or disabled.",
    )
    sim.patch(**SLOW)
    busy = sim.create_chat()
    for _ in range(20):
        assert sim.post(busy["id"]).json()["queued"] is True
    expect(
        sim.post(busy["id"]),
        429,
        "Message queue is full.",
        "Maximum 20 messages can be queued.",
    )
    expect(
        sim.api.patch(f"{sim.base}/{busy['id']}", json={"archived": True}),
        409,
        "Cannot archive an active chat. Interrupt or wait for the chat to finish first.",
    )
    sim.api.post(f"{sim.base}/{busy['id']}/interrupt")


def test_chat_rows(era_d: EraSim) -> None:
    sim = era_d
    chat = sim.create_chat()
    one = f"{sim.base}/{chat['id']}"
    sim.wait_idle(chat["id"])
    expect(sim.api.post(f"{one}/interrupt"), 409, "Chat is not in an interruptible state.")
    expect(sim.api.patch(one, json={"title": "  "}), 400, "Title cannot be empty.")
    expect(
        sim.api.patch(one, json={"title": "t" * 201}), 400, "Title must be at most 200 characters."
    )
    expect(sim.api.post(f"{one}/queue/1/promote"), 409, "Chat has no queued messages to promote.")
    expect(sim.api.patch(one, json={"archived": False}), 400, "Chat is already not archived.")
    assert sim.api.patch(one, json={"archived": True}).status_code == 204
    expect(sim.api.patch(one, json={"archived": True}), 400, "Chat is already archived.")
    expect(sim.post(chat["id"]), 400, "Cannot send messages to an archived chat.")
    expect(sim.api.post(f"{one}/interrupt"), 400, "Cannot interrupt an archived chat.")
    expect(
        sim.api.post(f"{one}/queue/1/promote"),
        400,
        "Cannot promote queued messages in an archived chat.",
    )
    with pytest.raises(InvalidStatus) as refused:
        sim.open(chat["id"], "?after_id=x")
    response = refused.value.response
    assert response.status_code == 400
    assert orjson.loads(response.body or b"{}") == {
        "message": "Invalid after_id parameter.",
        "detail": 'strconv.ParseInt: parsing "x": invalid syntax',
    }


def test_rate_limit_rows(era_d: EraSim) -> None:
    sim = era_d
    sim.patch(rate_limit_per_minute=2)
    first, second = sim.create_chat(), sim.create_chat()
    # Keyed by user and path: each chat's own path has its own budget.
    assert sim.api.get(f"{sim.base}/{first['id']}").status_code == 200
    assert sim.api.get(f"{sim.base}/{second['id']}").status_code == 200
    limited = sim.api.post(sim.base, json=create_body("d"))
    expect(limited, 429, "You've been rate limited for sending more than 2 requests in 1m0s.")
    assert int(limited.headers["X-Ratelimit-Reset"]) % 60 == 0
    owner_only = sim.http.get(
        sim.base,
        headers={"Coder-Session-Token": sim.token or "", "X-Coder-Bypass-Ratelimit": "true"},
    )
    assert owner_only.status_code == 200  # the simulator's token is an owner's
