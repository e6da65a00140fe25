"""The steps a turn is made of, played by the player without a server: a workspace tool with
and without a workspace, a sub-agent spawned and waited for, the tools each chat is offered,
and tool results a client posts waking its chat."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from loadtest.mockllm.coder_tools import EXECUTE, SPAWN_AGENT, WAIT_AGENT
from loadtest.protocol.constants import NO_WORKSPACE
from loadtest.protocol.eras import Era
from loadtest.protocol.models import ChatMessagePart, ToolResult
from loadtest.sim.chat_state import ChatState
from loadtest.sim.config import SimConfig
from loadtest.sim.state import Sim
from loadtest.sim.turn_steps import offered_tools
from tests.unit.sim.apps import new_chat

FAST: dict[str, Any] = {"ttft_ms": 0, "part_gap_ms": 0, "parts_per_turn": 2, "seed": 1}


def _sim(**config: Any) -> Sim:
    return Sim(Era.D, SimConfig.model_validate({**FAST, **config}), None)


def _tool_results(chat: ChatState) -> list[ChatMessagePart]:
    return [p for m in chat.messages if m.role == "tool" for p in m.content or ()]


def test_a_workspace_tool_without_a_workspace_fails_and_the_turn_goes_on() -> None:
    async def scenario() -> None:
        sim = _sim(tool_steps=1)
        chat = new_chat(sim)
        sim.player.start(chat)
        await asyncio.wait_for(sim.player.tasks[chat.id], 10)
        counts = sim.counters.of(chat.id)
        assert counts.tool_calls == {EXECUTE: 1} and counts.tool_errors == 1
        (result,) = _tool_results(chat)
        assert result.is_error and result.result == NO_WORKSPACE
        assert (counts.turns_completed, chat.status) == (1, "waiting")

    asyncio.run(scenario())


def test_a_workspace_tool_in_a_workspace_returns_its_output() -> None:
    async def scenario() -> None:
        sim = _sim(tool_steps=2)
        chat = new_chat(sim, workspace_id="ws-1")
        sim.player.start(chat)
        await asyncio.wait_for(sim.player.tasks[chat.id], 10)
        counts = sim.counters.of(chat.id)
        assert counts.tool_calls == {EXECUTE: 2} and counts.tool_errors == 0
        results = _tool_results(chat)
        assert [r.result for r in results] == [{"output": "chatload\n", "exit_code": 0}] * 2
        # Each tool step: the call's assistant message, the tool's, then the final answer.
        roles = [m.role for m in chat.messages]
        assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant"]

    asyncio.run(scenario())


def test_a_spawned_sub_agent_runs_its_own_turn_and_its_report_returns_to_the_parent() -> None:
    async def scenario() -> None:
        sim = _sim(subagents_per_turn=1)
        chat = new_chat(sim, workspace_id="ws-1")
        sim.player.start(chat)
        await asyncio.wait_for(sim.player.tasks[chat.id], 10)
        (child,) = chat.children
        assert child.parent_chat_id == chat.id and child.workspace_id == "ws-1"
        assert child.status == "waiting" and child.title.endswith("sub-agent 1")
        counts = sim.counters.of(chat.id)
        assert counts.subagents_spawned == 1
        assert counts.tool_calls == {SPAWN_AGENT: 1, WAIT_AGENT: 1}
        spawned, waited = (r.result for r in _tool_results(chat))
        assert spawned["chat_id"] == child.id
        assert waited["chat_id"] == child.id and waited["report"]
        assert "timed_out" not in waited

    asyncio.run(scenario())


def test_a_root_chat_is_offered_the_sub_agent_tools_and_a_sub_agent_is_not() -> None:
    root = ChatState("u1", "t", "m", datetime(2026, 12, 1, tzinfo=UTC))
    child = ChatState("u1", "t", "m", datetime(2026, 12, 1, tzinfo=UTC))
    child.parent_chat_id = root.id
    names = [tool["function"]["name"] for tool in offered_tools(root)]
    assert names[0] == EXECUTE and {SPAWN_AGENT, WAIT_AGENT} <= set(names)
    assert [tool["function"]["name"] for tool in offered_tools(child)] == [EXECUTE]


def test_answer_wakes_only_a_chat_that_waits_and_ignores_others() -> None:
    async def scenario() -> None:
        sim = _sim(requires_action_ratio=1.0)
        chat = new_chat(sim)
        sim.player.answer("no-such-chat")  # nothing waits: nothing happens
        sim.player.start(chat)
        for _ in range(10_000):
            if chat.status == "requires_action":
                break
            await asyncio.sleep(0)
        assert chat.status == "requires_action"
        (call,) = chat.needs
        answer = ToolResult(tool_call_id=call.tool_call_id, output={"ok": True})
        sim.hub.publish(chat.id, sim.store.tool_results(chat, [answer]))
        sim.player.answer(chat.id)
        await asyncio.wait_for(sim.player.tasks[chat.id], 10)
        counts = sim.counters.of(chat.id)
        assert (chat.status, counts.turns_completed) == ("waiting", 1)
        assert chat.messages[-1].role == "assistant"

    asyncio.run(scenario())
