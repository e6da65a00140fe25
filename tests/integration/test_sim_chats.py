"""The chats REST surface of ``chatload sim``, success and error paths, per era."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import ORGANIZATION, EraSim, create_body, text

NOT_FOUND = "Resource not found or you do not have access to this resource"
SLOW = {"ttft_ms": {"dist": "constant", "value": 5000}}


def _chat(body: dict[str, Any]) -> dict[str, Any]:
    return body.get("chat", body)


def test_create_get_list(any_era: EraSim) -> None:
    sim = any_era
    chat = sim.create_chat("hello there")
    assert chat["status"] == ("running" if sim.era == "d" else "pending")
    assert chat["title"] == "hello there"
    assert chat["archived"] is False
    if sim.era == "d":
        assert "last_error" not in chat
        assert chat["organization_id"] == ORGANIZATION
        assert chat["children"] == []
    else:
        assert chat["last_error"] is None
        assert ("organization_id" in chat) is (sim.era == "b")
    idle = sim.wait_idle(chat["id"])
    assert idle["status"] == "waiting"
    got = sim.api.get(f"{sim.base}/{chat['id']}")
    assert got.status_code == 200
    if sim.era == "a":
        body = got.json()
        assert set(body) == {"chat", "messages", "queued_messages"}
        assert [m["role"] for m in body["messages"]] == ["user", "assistant"]
        assert body["messages"][1]["usage"]["output_tokens"] > 0
        assert body["queued_messages"] == []
    else:
        assert got.json()["id"] == chat["id"]
    listed = sim.api.get(sim.base).json()
    assert chat["id"] in [c["id"] for c in listed]


def test_create_errors(any_era: EraSim) -> None:
    sim = any_era

    def body(content: list[dict[str, Any]]) -> dict[str, Any]:
        return {**create_body(sim.era), "content": content}

    blank = [{"type": "text", "text": " "}]
    # Section 8.1: text is trimmed before it is stored; nothing left is no content.
    cases: list[tuple[dict[str, Any], int, str, str | None]] = [
        (body([]), 400, "Content is required.", "Content cannot be empty."),
        (body(blank), 400, "Content is required.", "Content cannot be empty."),
    ]
    if sim.era != "a":
        stranger = {**text("hi"), "organization_id": "0fa1c0de-c0de-4c0d-8c0d-0000000000ff"}
        cases += [
            (text("hi"), 400, "organization_id is required.", None),
            (stranger, 403, "You are not a member of the specified organization.", None),
        ]
    for request, status, message, detail in cases:
        reply = sim.api.post(sim.base, json=request)
        assert reply.status_code == status, reply.text
        assert reply.json()["message"] == message
        assert reply.json().get("detail") == detail
    reply = sim.api.post(sim.base, content=b"{not json")
    assert reply.status_code == 400
    assert reply.json()["message"] == "Request body must be valid JSON."
    assert reply.json()["detail"]
    # A field of the wrong type fails the request model, as Go's decoder fails the struct.
    reply = sim.api.post(sim.base, json={**create_body(sim.era), "content": "hi"})
    assert reply.status_code == 400
    assert reply.json()["message"] == "Request body must be valid JSON."
    assert "CreateChatRequest.content" in reply.json()["detail"]
    untyped = body([{"text": "no type"}])
    reply = sim.api.post(sim.base, json=untyped)
    assert (reply.status_code, reply.json().get("detail")) == (
        400,
        'content[0].type "" is not supported.',
    )


def test_lookup_errors(any_era: EraSim) -> None:
    sim = any_era
    reply = sim.api.get(f"{sim.base}/nope")
    assert reply.status_code == 400
    assert reply.json()["message"] == 'Invalid UUID "nope".'
    reply = sim.api.get(f"{sim.base}/6e0a4d0e-8d8c-4c2e-9d4f-000000000000")
    assert (reply.status_code, reply.json()) == (404, {"message": NOT_FOUND})
    reply = sim.api.get(f"{sim.base}/6e0a4d0e-8d8c-4c2e-9d4f-000000000000/nothing/here")
    assert (reply.status_code, reply.json()) == (404, {"message": "Route not found."})
    other = "/api/v2/chats" if sim.era != "d" else "/api/experimental/chats"
    assert sim.api.get(other).status_code == 404


def test_post_idle_then_queue_until_full(any_era: EraSim) -> None:
    sim = any_era
    chat = sim.create_chat()
    sim.wait_idle(chat["id"])
    reply = sim.post(chat["id"], "second")
    assert reply.status_code == 200
    body = reply.json()
    assert body["queued"] is False
    assert body["message"]["role"] == "user"
    assert body["message"]["content"] == [{"type": "text", "text": "second"}]
    assert "queued_message" not in body
    sim.patch(**SLOW)
    sim.wait_idle(chat["id"])
    assert sim.post(chat["id"], "starts a slow turn").json()["queued"] is False
    for index in range(20):
        reply = sim.post(chat["id"], f"queued {index}")
        assert reply.status_code == 200
        queued = reply.json()
        assert queued["queued"] is True
        assert queued["queued_message"]["content"][0]["text"] == f"queued {index}"
        assert "message" not in queued
    reply = sim.post(chat["id"], "one too many")
    assert reply.status_code == 429
    assert reply.json() == {
        "message": "Message queue is full.",
        "detail": "Maximum 20 messages can be queued.",
    }
    sim.restore()
    sim.api.post(f"{sim.base}/{chat['id']}/interrupt")


def test_delete_and_promote_queued(any_era: EraSim) -> None:
    sim = any_era
    sim.patch(**SLOW)
    chat = sim.create_chat()
    first = sim.post(chat["id"], "q1").json()["queued_message"]["id"]
    second = sim.post(chat["id"], "q2").json()["queued_message"]["id"]
    queue = f"{sim.base}/{chat['id']}/queue"
    assert sim.api.delete(f"{queue}/{first}").status_code == 204
    reply = sim.api.delete(f"{queue}/{first}")
    assert (reply.status_code, reply.json()["message"]) == (404, "Queued message not found.")
    reply = sim.api.delete(f"{queue}/abc")
    assert (reply.status_code, reply.json()["message"]) == (400, "Invalid queued message ID.")
    sim.restore()
    reply = sim.api.post(f"{queue}/{second}/promote")
    if sim.era == "d":
        assert reply.status_code == 202
        assert reply.json() == {"message": "Queued message promotion accepted."}
    else:
        assert reply.status_code == 200
        assert reply.json()["role"] == "user"
        assert reply.json()["content"][0]["text"] == "q2"
    sim.wait_idle(chat["id"])
    got = sim.api.get(
        f"{sim.base}/{chat['id']}/messages" if sim.era != "a" else sim.base + "/" + chat["id"]
    )
    body = got.json()
    assert body["queued_messages"] == []


def test_edit(any_era: EraSim) -> None:
    sim = any_era
    chat = sim.create_chat("original")
    sim.wait_idle(chat["id"])
    path = f"{sim.base}/{chat['id']}/messages"
    for raw, status, message in [
        ("x", 400, "Invalid chat message ID."),
        ("999999", 404, "Chat message not found."),
    ]:
        reply = sim.api.patch(f"{path}/{raw}", json=text("edited"))
        assert (reply.status_code, reply.json()["message"]) == (status, message)
    messages = _messages(sim, chat["id"])
    user, assistant = messages[0], messages[1]
    reply = sim.api.patch(f"{path}/{assistant['id']}", json=text("edited"))
    assert (reply.status_code, reply.json()["message"]) == (
        400,
        "Only user messages can be edited.",
    )
    reply = sim.api.patch(f"{path}/{user['id']}", json=text("edited"))
    assert reply.status_code == 200
    body = reply.json()
    edited = body["message"] if sim.era == "d" else body
    assert edited["id"] > assistant["id"]
    assert edited["content"][0]["text"] == "edited"
    if sim.era == "d":
        assert body["deleted_message_ids"] == [user["id"], assistant["id"]]
    sim.wait_idle(chat["id"])
    assert [m["content"][0]["text"] for m in _messages(sim, chat["id"])][:1] == ["edited"]


def _messages(sim: EraSim, chat_id: str) -> list[dict[str, Any]]:
    """The chat's messages, oldest first."""
    if sim.era == "a":
        return sim.api.get(f"{sim.base}/{chat_id}").json()["messages"]
    page = sim.api.get(f"{sim.base}/{chat_id}/messages").json()["messages"]
    return list(reversed(page))


def test_interrupt(any_era: EraSim) -> None:
    sim = any_era
    sim.patch(**SLOW)
    chat = sim.create_chat()
    reply = sim.api.post(f"{sim.base}/{chat['id']}/interrupt")
    assert reply.status_code == 200
    assert reply.json()["status"] == "waiting"
    reply = sim.api.post(f"{sim.base}/{chat['id']}/interrupt")
    if sim.era == "d":
        assert reply.status_code == 409
        assert reply.json()["message"] == "Chat is not in an interruptible state."
    else:
        assert (reply.status_code, reply.json()["status"]) == (200, "waiting")


ARCHIVE_ACTIVE = "Cannot archive an active chat. Interrupt or wait for the chat to finish first."


def test_archive(any_era: EraSim) -> None:
    sim = any_era
    chat = sim.create_chat()
    one = f"{sim.base}/{chat['id']}"
    archived_early = False
    if sim.era == "d":
        reply = sim.api.patch(one, json={"archived": True})
        if reply.status_code == 409:
            assert reply.json()["message"] == ARCHIVE_ACTIVE
        archived_early = reply.status_code == 204  # the turn had already ended
    sim.wait_idle(chat["id"])
    if sim.era == "a":
        assert sim.api.post(f"{one}/archive").status_code == 204
        reply = sim.api.post(f"{one}/archive")
        assert (reply.status_code, reply.json()["message"]) == (400, "Chat is already archived.")
    elif not archived_early:
        assert sim.api.patch(one, json={"archived": True}).status_code == 204
    assert chat["id"] not in [c["id"] for c in sim.api.get(sim.base).json()]
    archived = sim.api.get(sim.base, params={"q": "archived:true"}).json()
    assert chat["id"] in [c["id"] for c in archived]
    # Posting to an archived chat: refused from era B on (era A had no such check).
    reply = sim.post(chat["id"])
    if sim.era == "a":
        assert reply.status_code == 200
        sim.wait_idle(chat["id"])
    else:
        assert reply.json() == {"message": "Cannot send messages to an archived chat."}
        reply = sim.api.patch(one, json={"archived": True})
        assert (reply.status_code, reply.json()["message"]) == (400, "Chat is already archived.")
    if sim.era == "a":
        assert sim.api.post(f"{one}/unarchive").status_code == 204
        reply = sim.api.post(f"{one}/unarchive")
        assert (reply.status_code, reply.json()["message"]) == (400, "Chat is not archived.")
    else:
        assert sim.api.patch(one, json={"archived": False}).status_code == 204
        reply = sim.api.patch(one, json={"archived": False})
        assert reply.json() == {"message": "Chat is already not archived."}
    assert chat["id"] in [c["id"] for c in sim.api.get(sim.base).json()]


def test_archive_active_chat_is_refused_in_era_d(era_d: EraSim) -> None:
    era_d.patch(**SLOW)
    chat = era_d.create_chat()
    reply = era_d.api.patch(f"{era_d.base}/{chat['id']}", json={"archived": True})
    assert (reply.status_code, reply.json()["message"]) == (409, ARCHIVE_ACTIVE)
    era_d.api.post(f"{era_d.base}/{chat['id']}/interrupt")


def test_messages_page(era_b: EraSim, era_d: EraSim) -> None:
    for sim in (era_b, era_d):
        chat = sim.create_chat()
        sim.wait_idle(chat["id"])
        sim.post(chat["id"], "again")
        sim.wait_idle(chat["id"])
        path = f"{sim.base}/{chat['id']}/messages"
        page = sim.api.get(path, params={"limit": 2}).json()
        ids = [m["id"] for m in page["messages"]]
        assert ids == sorted(ids, reverse=True) and len(ids) == 2
        assert page["has_more"] is True
        newest_first = sim.api.get(path).json()["messages"]
        after = sim.api.get(path, params={"after_id": newest_first[-1]["id"]}).json()["messages"]
        assert [m["id"] for m in after] == sorted(m["id"] for m in newest_first[:-1])
        reply = sim.api.get(path, params={"limit": 0})
        assert (reply.status_code, reply.json()["message"]) == (
            400,
            "Invalid limit parameter (1-200).",
        )
        reply = sim.api.get(path, params={"after_id": 5, "before_id": 3})
        assert reply.json()["message"] == "after_id must be less than before_id."


def test_busy_behavior_interrupt(era_b: EraSim) -> None:
    sim = era_b
    sim.patch(**SLOW)
    chat = sim.create_chat()
    reply = sim.api.post(
        f"{sim.base}/{chat['id']}/messages", json={**text("x"), "busy_behavior": "later"}
    )
    assert (reply.status_code, reply.json()["message"]) == (400, "Invalid busy_behavior value.")
    sim.restore()
    reply = sim.api.post(
        f"{sim.base}/{chat['id']}/messages", json={**text("now"), "busy_behavior": "interrupt"}
    )
    assert reply.status_code == 200 and reply.json()["queued"] is True
    sim.wait_idle(chat["id"])
    texts = [m["content"][0]["text"] for m in _messages(sim, chat["id"]) if m["role"] == "user"]
    assert texts == ["hello", "now"]


def test_models_catalog(any_era: EraSim) -> None:
    sim = any_era
    if sim.era == "d":
        body = sim.api.get("/api/v2/organizations/default/chats/models").json()
        assert [m["model"] for m in body["models"]] == ["gpt-sim"]
        assert body["models"][0]["is_default"] is True
        assert set(body) == {"models", "providers", "unsupported_providers"}
    else:
        body = sim.api.get(f"{sim.base}/models").json()
        assert body["providers"][0]["models"][0]["model"] == "gpt-sim"
        assert body["providers"][0]["available"] is True


def test_create_with_unknown_model_config(any_era: EraSim) -> None:
    sim = any_era
    body = {**create_body(sim.era), "model_config_id": "6e0a4d0e-8d8c-4c2e-9d4f-00000000abcd"}
    reply = sim.api.post(sim.base, json=body)
    expected = (
        "Invalid model_config_id: model config not found or disabled."
        if sim.era == "d"
        else "Model config not found."  # older eras: not checked against Coder's source
    )
    assert (reply.status_code, reply.json()["message"]) == (400, expected)


def test_backlog_left_by_an_error_runs_on_the_next_post(era_b: EraSim) -> None:
    sim = era_b
    sim.patch(error_rate=1.0, error_retries=25, time_scale=0.0005)
    chat = sim.create_chat()
    assert sim.post(chat["id"], "waits in the queue").json()["queued"] is True
    assert sim.wait_idle(chat["id"])["status"] == "error"
    sim.restore()
    assert sim.post(chat["id"], "after the error").json()["queued"] is True
    assert sim.wait_idle(chat["id"])["status"] == "waiting"
    texts = [m["content"][0]["text"] for m in _messages(sim, chat["id"]) if m["role"] == "user"]
    assert texts == ["hello", "waits in the queue", "after the error"]
