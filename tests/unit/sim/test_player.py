"""The player driven directly, without a server: a planned turn's events and counts, the
concurrent-agent gate, and a transport fault written by the stream's writer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson

from loadtest.protocol.eras import Era
from loadtest.sim.config import SimConfig
from loadtest.sim.state import Sim
from loadtest.sim.stream import Writer
from tests.unit.sim.apps import new_chat

FAST: dict[str, Any] = {"ttft_ms": 0, "part_gap_ms": 0, "parts_per_turn": 3, "seed": 1}


def _sim(**config: Any) -> Sim:
    return Sim(Era.D, SimConfig.model_validate({**FAST, **config}), None)


def _is_json(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


async def _until(condition: Callable[[], bool]) -> None:
    """Yield to the player until ``condition`` holds (bounded: a stuck player fails)."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the player never got there")


def test_a_planned_turn_streams_its_parts_then_ends_waiting() -> None:
    async def scenario() -> None:
        sim = _sim(tool_steps=1)
        chat = new_chat(sim)
        sub = sim.hub.subscribe(chat.id, [])
        sim.player.start(chat)
        await asyncio.wait_for(sim.player.tasks[chat.id], 10)
        kinds = [kind for kind, _, _ in sub.queue]
        counts = sim.counters.of(chat.id)
        assert (counts.turns_started, counts.turns_completed, counts.turns_failed) == (1, 1, 0)
        assert counts.tool_calls == {"execute": 1}
        assert chat.status == "waiting"
        # Two steps of three text deltas each (a burst: one item each), two commits.
        parts = [n for kind, _, n in sub.queue if kind == "message_part"]
        assert sum(parts) >= 6 and kinds.count("message") >= 2
        assert sim.counters.first_output_ms and chat.id not in sim.player.tasks

    asyncio.run(scenario())


def test_a_failing_provider_retries_then_fails_the_turn() -> None:
    async def scenario() -> None:
        sim = _sim(error_rate=1.0, error_retries=25, time_scale=0)
        chat = new_chat(sim)
        sub = sim.hub.subscribe(chat.id, [])
        sim.player.start(chat)
        await asyncio.wait_for(sim.player.tasks[chat.id], 10)
        kinds = [kind for kind, _, _ in sub.queue]
        assert kinds.count("retry") == 24 and kinds[-1] in ("error", "status")
        assert chat.status == "error" and sim.counters.of(chat.id).turns_failed == 1

    asyncio.run(scenario())


def test_the_gate_holds_a_second_root_turn_until_the_first_ends() -> None:
    async def scenario() -> None:
        # The first turn waits for tool results the client never posts until told to.
        sim = _sim(agent_limit=1, requires_action_ratio=1.0)
        first, second = new_chat(sim), new_chat(sim)
        sim.player.start(first)
        await _until(lambda: first.status == "requires_action")
        sim.player.start(second)
        await _until(lambda: sim.player.agents()["root"] == (1, 1))
        assert second.status != "requires_action"
        await sim.player.stop(first.id)  # the first turn gives its slot up
        await _until(lambda: second.status == "requires_action")
        assert sim.player.agents()["root"] == (1, 0)
        await sim.player.close()

    asyncio.run(scenario())


def test_a_turn_fault_is_played_and_counted_by_each_stream_it_hits() -> None:
    async def scenario() -> None:
        sim = _sim(faults={"malformed_rate": 1.0})
        chat = new_chat(sim)
        sub = sim.hub.subscribe(chat.id, [])
        sim.player.start(chat)
        await asyncio.wait_for(sim.player.tasks[chat.id], 10)
        assert [kind for kind, _, _ in sub.queue].count("malformed") == 1
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        sub.close(1000, flush=True)
        await asyncio.wait_for(Writer(sim, sub, send).run(), 10)
        texts = [m["text"] for m in sent if m["type"] == "websocket.send"]
        assert sum(not _is_json(text) for text in texts) == 1  # the one broken frame
        assert sent[-1] == {"type": "websocket.close", "code": 1000, "reason": ""}
        assert sim.counters.of(chat.id).wire()["faults"] == {"malformed": 1}

    asyncio.run(scenario())
