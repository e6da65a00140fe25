"""The simulator's agent turns against real servers on 127.0.0.1 (protocol §10): tool steps in
§10.4's order, a tool's time, Coder's no-workspace tool error, sub-agents, the counts, and the
three tiers (client -> ``chatload sim --llm-url`` -> ``chatload mock-llm``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from loadtest.mockllm.control import render
from loadtest.protocol.constants import NO_WORKSPACE
from tests.integration.conftest import FAST, EraSim, create_body
from tests.integration.test_mockllm import _start, _stop

TOOL_MS = 300


def _workspace(sim: EraSim) -> str:
    reply = sim.api.get("/api/v2/workspaces", params={"q": 'name:"scaletest-"'})
    assert reply.status_code == 200, reply.text
    return str(reply.json()["workspaces"][0]["id"])


def _create(sim: EraSim, prompt: str, workspace: str | None) -> dict[str, Any]:
    body = create_body("d", prompt)
    if workspace is not None:
        body["workspace_id"] = workspace
    reply = sim.api.post(sim.base, json=body)
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def _turn(sim: EraSim, chat_id: str, prompt: str) -> list[tuple[float, dict[str, Any]]]:
    """Every event of one posted turn with its arrival time, from a stream opened before."""
    got: list[tuple[float, dict[str, Any]]] = []
    with sim.open(chat_id) as stream:
        stream.until_status("waiting")
        assert sim.post(chat_id, prompt).status_code == 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            events = orjson.loads(stream.socket.recv(timeout=30))
            now = time.monotonic()
            got += [(now, event) for event in events]
            if any(e["type"] == "status" and e["status"]["status"] == "waiting" for e in events):
                return got
    raise AssertionError("the turn did not end")


def _shape(event: dict[str, Any]) -> str:
    """One event as a token of §10.4's sequence."""
    kind = event["type"]
    if kind == "message_part":
        body = event["message_part"]
        part = body["part"]
        if part["type"] == "tool-call":
            return "args_delta" if "args_delta" in part else "tool-call"
        return f"{body['role']}:{part['type']}"
    if kind == "message":
        return f"message:{event['message']['role']}"
    return kind


def _steps(events: list[tuple[float, dict[str, Any]]]) -> list[str]:
    """The turn's tokens, text deltas of a run folded into one and statuses left out."""
    tokens: list[str] = []
    for _, event in events:
        token = _shape(event)
        if token == "status" or (token == "assistant:text" and tokens[-1:] == [token]):
            continue
        tokens.append(token)
    return tokens


def test_tool_steps_follow_coders_order_and_take_the_tool_time(era_d: EraSim) -> None:
    sim = era_d
    sim.patch(workspaces=2, tool_time_ms={"dist": "constant", "value": TOOL_MS})
    chat = _create(sim, "hello", _workspace(sim))
    assert chat["workspace_id"] == _workspace(sim)  # stored and worn
    sim.wait_idle(chat["id"])
    before = sim.counts()["chats"][chat["id"]]["tool_calls"].get("execute", 0)
    events = _turn(sim, chat["id"], render(tool_calls_this_turn=2) + "\ngo")
    one_tool = [
        "args_delta", "tool-call", "message:assistant", "preview_reset",  # committed first
        "preview_reset", "tool:tool-result", "message:tool", "preview_reset",
        "preview_reset", "assistant:text",  # the next step, a new episode
    ]  # fmt: skip
    tokens = _steps(events)
    start = tokens.index("args_delta")
    assert tokens[start : start + len(one_tool)] == one_tool, tokens
    second = tokens.index("args_delta", start + 1)
    assert tokens[second : second + len(one_tool)] == one_tool, tokens
    assert "args_delta" not in tokens[second + 1 :]
    # Steps = tool calls + 1: one committed assistant message per LLM step.
    assert tokens.count("message:assistant") == 3
    # Each tool-result part comes a tool's time after its complete call, in its own episode
    # at generation attempt 1 (a commit resets the count).
    calls = {
        e["message_part"]["part"]["tool_call_id"]: t for t, e in events if _shape(e) == "tool-call"
    }
    results = [(t, e) for t, e in events if _shape(e) == "tool:tool-result"]
    assert len(results) == 2
    for at, event in results:
        body = event["message_part"]
        waited = at - calls[body["part"]["tool_call_id"]]
        assert TOOL_MS / 1000 * 0.9 <= waited < TOOL_MS / 1000 + 5, waited
        assert body["generation_attempt"] == 1 and body["seq"] == 1
        assert not body["part"].get("is_error")
    counts = sim.counts()["chats"][chat["id"]]
    assert counts["tool_calls"]["execute"] - before == 2
    assert counts["tool_errors"] == 0


def test_a_tool_without_a_workspace_is_coders_error_and_the_turn_goes_on(era_d: EraSim) -> None:
    sim = era_d
    chat = _create(sim, "hello", None)
    assert "workspace_id" not in chat
    sim.wait_idle(chat["id"])
    events = _turn(sim, chat["id"], render(tool_calls_this_turn=1) + "\ngo")
    results = [e["message_part"]["part"] for _, e in events if _shape(e) == "tool:tool-result"]
    assert results == [{**results[0], "result": NO_WORKSPACE, "is_error": True}], results
    tokens = _steps(events)
    assert tokens.count("message:assistant") == 2  # the answer after the error
    assert sim.counts()["chats"][chat["id"]]["tool_errors"] == 1


def test_a_sub_agent_is_a_child_chat_with_its_own_turn_and_report(era_d: EraSim) -> None:
    sim = era_d
    sim.patch(workspaces=1, agent_gate=True)
    workspace = _workspace(sim)
    parent = _create(sim, "hello", workspace)
    sim.wait_idle(parent["id"])
    prompt = render(tool_calls_this_turn=0, subagents_this_turn=1, subagent_tool_calls=1)
    with sim.stream(f"{sim.base}/watch") as watch:
        events = _turn(sim, parent["id"], prompt + "\ndelegate")
        watched: list[dict[str, Any]] = []
        while not any(e.get("kind") == "created" for e in watched):
            watched.append(orjson.loads(watch.socket.recv(timeout=10)))
        created = next(e["chat"] for e in watched if e.get("kind") == "created")
    # The parent's stream holds its own spawn_agent and wait_agent calls and results only.
    names = [e["message_part"]["part"]["tool_name"] for _, e in events if _shape(e) == "tool-call"]
    assert names == ["spawn_agent", "wait_agent"]
    results = [e["message_part"]["part"] for _, e in events if _shape(e) == "tool:tool-result"]
    spawned, waited = (part["result"] for part in results)
    child_id = spawned["chat_id"]
    assert spawned["status"] == "running" and spawned["type"] == "general"
    assert waited["chat_id"] == child_id and waited["status"] == "waiting"
    assert waited["report"] and "timed_out" not in waited
    assert created["id"] == child_id
    assert created["parent_chat_id"] == created["root_chat_id"] == parent["id"]
    child = sim.api.get(f"{sim.base}/{child_id}").json()
    assert child["workspace_id"] == workspace and child["children"] == []
    assert [c["id"] for c in sim.api.get(f"{sim.base}/{parent['id']}").json()["children"]] == [
        child_id
    ]
    counts = sim.counts()["chats"]
    assert counts[parent["id"]]["subagents_spawned"] == 1
    assert counts[child_id]["tool_calls"] == {"execute": 1}  # the child's own control block
    assert counts[child_id]["turns_completed"] == 1


@pytest.fixture
def mock_llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    flags = ["--ttft", "0", "--tokens-per-s", "0", "--output-tokens", "4"]
    mock = _start(tmp_path_factory.mktemp("mock"), *flags, "--tool-calls-per-turn", "2")
    yield mock.url
    code, output = _stop(mock)
    assert code == 0, output


def test_three_tiers_the_mocks_tool_calls_drive_the_steps(mock_llm: str) -> None:
    sim = EraSim("d", [*FAST, "--llm-url", mock_llm, "--workspaces", "1", "--tool-time", "50"])
    try:
        chat = _create(sim, "hello", _workspace(sim))
        sim.wait_idle(chat["id"], timeout=30)
        events = _turn(sim, chat["id"], "again")
        tokens = _steps(events)
        assert tokens.count("message:assistant") == 3  # 2 tool calls + 1
        assert tokens.count("tool:tool-result") == 2
        counts = sim.counts()["chats"][chat["id"]]
        assert counts["tool_calls"] == {"execute": 4}  # two turns of two
        mock = httpx.get(mock_llm.removesuffix("/v1") + "/__mock/counts").json()
        assert mock["tool_calls"]["execute"] == counts["tool_calls"]["execute"] == 4
    finally:
        sim.stop()
