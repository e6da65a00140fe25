"""Spec §9.3 against the running simulator: a dynamic tool call's order on the stream, the
watch's ``action_required`` without ``tool_calls``, ``POST /tool-results`` (204; 409 when the
chat waits for nothing; 400 for results that do not answer it) and the deadline after which
chatd answers the calls itself."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.integration.conftest import EraSim, Stream


def _idle_chat(sim: EraSim, **config: Any) -> str:
    """A chat whose first turn is over; then ``config`` for the turns to come."""
    chat = sim.create_chat()
    sim.wait_idle(chat["id"])
    sim.patch(requires_action_ratio=1.0, **config)
    return str(chat["id"])


def _waiting_for_the_client(sim: EraSim, chat_id: str, stream: Stream) -> list[dict[str, Any]]:
    """Post a turn and read until its ``action_required``; the events of the turn."""
    stream.until_status("waiting")
    start = len(stream.events)
    sim.post(chat_id, "use the tool")
    while not any(e["type"] == "action_required" for e in stream.events[start:]):
        assert stream.read(), "stream closed"
    return stream.events[start:]


def _tool_results(sim: EraSim, chat_id: str, results: Any) -> Any:
    return sim.api.post(f"{sim.base}/{chat_id}/tool-results", json={"results": results})


def test_the_call_is_committed_then_required_and_the_watch_names_only_the_chat(
    era_d: EraSim,
) -> None:
    sim = era_d
    chat_id = _idle_chat(sim)
    watch = sim.stream(f"{sim.base}/watch")
    with sim.open(chat_id) as stream, watch:
        turn = _waiting_for_the_client(sim, chat_id, stream)
        kinds = [e["type"] if e["type"] != "status" else e["status"]["status"] for e in turn]
        asking = kinds.index("requires_action")
        # The assistant message holding the call (its CommitStep, then preview_reset), and
        # later, in a transaction of its own, requires_action then action_required.
        assert kinds[asking - 2 :] == [
            "message",
            "preview_reset",
            "requires_action",
            "action_required",
        ], kinds
        call = turn[asking - 2]["message"]["content"][-1]
        assert call["type"] == "tool-call"
        asked = turn[-1]["action_required"]["tool_calls"]
        assert [c["tool_call_id"] for c in asked] == [call["tool_call_id"]]
        assert isinstance(asked[0]["args"], str)  # a JSON string, not an object
        watched: list[dict[str, Any]] = []
        while not any(e.get("kind") == "action_required" for e in watched):
            watched.append(orjson.loads(watch.socket.recv(timeout=10)))
        event = next(e for e in watched if e.get("kind") == "action_required")
        assert set(event) == {"kind", "chat"} and event["chat"]["id"] == chat_id
        reply = _tool_results(
            sim, chat_id, [{"tool_call_id": call["tool_call_id"], "output": {"ok": 1}}]
        )
        assert reply.status_code == 204 and reply.content == b""


@pytest.mark.parametrize(
    ("results", "message", "detail"),
    [
        (
            [{"tool_call_id": "{id}", "output": 1}, {"tool_call_id": "{id}", "output": 2}],
            "Duplicate tool_call_id in results.",
            'Duplicate tool call ID "{id}".',
        ),
        ([{"tool_call_id": "{id}"}], "Tool result output must be valid JSON.", None),
        ([], "Missing tool result.", 'Missing result for tool call "{id}".'),
        (
            [{"tool_call_id": "{id}", "output": 1}, {"tool_call_id": "other", "output": 1}],
            "Unexpected tool result.",
            'No pending tool call with ID "other".',
        ),
    ],
)
def test_tool_results_are_checked_against_the_pending_calls(
    era_d: EraSim, results: list[dict[str, Any]], message: str, detail: str | None
) -> None:
    sim = era_d
    chat_id = _idle_chat(sim)
    with sim.open(chat_id) as stream:
        turn = _waiting_for_the_client(sim, chat_id, stream)
        call_id = turn[-1]["action_required"]["tool_calls"][0]["tool_call_id"]
        filled = orjson.loads(orjson.dumps(results).decode().replace("{id}", call_id))
        refused = _tool_results(sim, chat_id, filled)
        assert refused.status_code == 400
        body = refused.json()
        assert body["message"] == message
        assert body.get("detail") == (
            detail.replace("{id}", call_id)
            if detail
            else f'Output for tool call "{call_id}" is not valid JSON.'
        )
        # Nothing was taken: the right answer still goes through, an error flagged as one.
        answer = [{"tool_call_id": call_id, "output": "it failed", "is_error": True}]
        assert _tool_results(sim, chat_id, answer).status_code == 204
        stream.until(lambda e: e["type"] == "message" and e["message"]["role"] == "tool")
        result = next(
            e["message"]["content"][0] for e in stream.events if e["type"] == "message"
            and e["message"]["role"] == "tool"
        )  # fmt: skip
        assert (result["result"], result["is_error"]) == ("it failed", True)
        stream.until_status("waiting", count=2)
        # Waiting for nothing now: 409 and the shared invalid-state message.
        late = _tool_results(sim, chat_id, answer)
        assert (late.status_code, late.json()["message"]) == (409, "Chat is in an invalid state.")


def test_unanswered_calls_get_cancellation_results_at_the_deadline(era_d: EraSim) -> None:
    """Coder's deadline is 5 minutes; ``requires_action_timeout_ms`` scales it down here."""
    sim = era_d
    chat_id = _idle_chat(sim, requires_action_timeout_ms=300)
    with sim.open(chat_id) as stream:
        turn = _waiting_for_the_client(sim, chat_id, stream)
        call_id = turn[-1]["action_required"]["tool_calls"][0]["tool_call_id"]
        asked = len(stream.events)
        stream.until_status("waiting", count=2)
        after = stream.events[asked:]
    kinds = [e["type"] if e["type"] != "status" else e["status"]["status"] for e in after]
    # The cancellation is committed like an answer: its tool message, running, a new episode.
    assert kinds[:3] == ["message", "running", "preview_reset"], kinds
    part = after[0]["message"]["content"][0]
    assert (part["type"], part["tool_call_id"]) == ("tool-result", call_id)
    assert (part["result"], part["is_error"]) == ("Tool execution timed out", True)
    assert any(e["type"] == "message" and e["message"]["role"] == "assistant" for e in after)
    assert sim.counts()["totals"]["actions_cancelled"] >= 1
