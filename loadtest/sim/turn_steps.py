"""A turn's steps as chatd runs them for the player: attempts, commits, retries and the tools
the server runs (``execute``, ``spawn_agent``, ``wait_agent``; spec section 10)."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

import httpx

from loadtest.mockllm.coder_tools import EXECUTE, SPAWN_AGENT, SUBAGENT_TYPE, WAIT_AGENT
from loadtest.mockllm.control import render
from loadtest.protocol.agents import POOL_ROOT, POOL_SUBAGENT, POOLS
from loadtest.protocol.constants import NO_WORKSPACE, WAIT_AGENT_TIMEOUT_S
from loadtest.protocol.models import ChatMessagePart
from loadtest.sim import plan as plans
from loadtest.sim.catalog import Catalog
from loadtest.sim.chat_state import ChatState
from loadtest.sim.chats import ChatStore
from loadtest.sim.config import SimConfig
from loadtest.sim.events import Failure
from loadtest.sim.hub import Counters, Hub
from loadtest.sim.metrics import DaemonMetrics


class Deployment(Protocol):
    """What the player needs of the simulated deployment (``state.Sim`` is one): the seam
    that keeps the state, which owns a player, from being imported by it."""

    config: SimConfig
    rng: random.Random
    hub: Hub
    store: ChatStore
    counters: Counters
    catalog: Catalog
    metrics: DaemonMetrics


#: Tools that run in the chat's workspace: without one they fail with ``NO_WORKSPACE``
#: (coderd/x/chatd/chattool: ``execute``, ``read_file``, ``write_file``, ``edit_files``,
#: ``process_*``; spec §10.1).
WORKSPACE_TOOLS: Final = frozenset(
    {EXECUTE, "read_file", "write_file", "edit_files", "process_output", "process_list",
     "process_signal"}
)  # fmt: skip


#: The tools offered to the LLM (``--llm-url``), as OpenAI function tools: ``execute`` to
#: every chat, the sub-agent tools to root chats only (spec §10.1, §10.3; the argument
#: schemas follow chattool/execute.go and subagent.go's ``spawnAgentArgs``/``waitAgentArgs``).
_EXECUTE_TOOL: Final = {
    "type": "function",
    "function": {
        "name": EXECUTE,
        "description": "Run a shell command in the workspace.",
        "parameters": {
            "type": "object",
            "properties": {"command": {"type": "string"}},
            "required": ["command"],
        },
    },
}


_SUBAGENT_TOOLS: Final = (
    {
        "type": "function",
        "function": {
            "name": SPAWN_AGENT,
            "description": "Start a sub-agent chat on a task; returns its chat_id at once.",
            "parameters": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": ["general", "explore", "computer_use"]},
                    "prompt": {"type": "string"},
                    "title": {"type": "string"},
                },
                "required": ["type", "prompt"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": WAIT_AGENT,
            "description": "Wait for a sub-agent to finish and return its report.",
            "parameters": {
                "type": "object",
                "properties": {
                    "chat_id": {"type": "string"},
                    "timeout_seconds": {"type": "integer"},
                },
                "required": ["chat_id"],
            },
        },
    },
)


def offered_tools(chat: ChatState) -> list[dict[str, Any]]:
    """The tools a chat's LLM request declares."""
    if chat.parent_chat_id is None:
        return [_EXECUTE_TOOL, *_SUBAGENT_TOOLS]
    return [_EXECUTE_TOOL]


async def sleep_for(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)


def since(began_ns: int) -> float:
    """Seconds from ``began_ns`` (``perf_counter_ns``) to now."""
    return (time.perf_counter_ns() - began_ns) / 1e9


class TurnSteps:
    """The player's state and the steps every kind of turn is made of (``player.Player``
    schedules the turns; ``llm_tier.LLMTier`` asks a real LLM for them)."""

    def __init__(self, sim: Deployment) -> None:
        self.sim = sim
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._client: httpx.AsyncClient | None = None
        #: When each chat's current turn was accepted, until its first output.
        self._accepted: dict[str, int] = {}
        #: When each chat's next turn became runnable, until the daemon takes it up.
        self._runnable: dict[str, int] = {}
        #: Turns past the concurrent-agent gate now, per pool (``coderd_chatd_agents_active``).
        self._running: dict[str, int] = dict.fromkeys(POOLS, 0)
        #: Chats in ``requires_action``: set when the client posts its tool results.
        self._answered: dict[str, asyncio.Event] = {}
        #: The concurrent-agent gate, per pool (root, subagent): turns admitted now, and
        #: those waiting, in order.
        self._admitted: dict[str, int] = dict.fromkeys(POOLS, 0)
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {
            POOL_ROOT: deque(),
            POOL_SUBAGENT: deque(),
        }
        #: Turns generating now: they share ``llm_tokens_per_s``.
        self._generating = 0

    def start(self, chat: ChatState) -> None:
        """Run the chat's new turn in the background (``Player.start``): a spawned child's."""
        raise NotImplementedError

    def answer(self, chat_id: str) -> None:
        """The client posted the tool results its chat was waiting for."""
        answered = self._answered.pop(chat_id, None)
        if answered is not None:
            answered.set()

    def _first_output(self, chat_id: str) -> None:
        accepted = self._accepted.pop(chat_id, None)
        if accepted is not None:
            self.sim.counters.first_output_ms.append((time.perf_counter_ns() - accepted) / 1e6)

    def _provider(self, chat: ChatState) -> str:
        model = self.sim.catalog.models.get(chat.model_config_id)
        return model.provider if model else "openai"

    def _model(self, chat: ChatState) -> tuple[str, str]:
        """The ``provider`` and ``model`` labels of the chat's metrics."""
        model = self.sim.catalog.models.get(chat.model_config_id)
        return (model.provider, model.model) if model else ("openai", "gpt-sim")

    def _first_token(self, chat: ChatState, attempt_began: int) -> None:
        self.sim.metrics.first_token(since(attempt_began), *self._model(chat))

    def _commit(self, chat: ChatState, output_tokens: int | None) -> None:
        """Persist the step's assistant message and publish it (the ``commit`` stage)."""
        began = time.perf_counter_ns()
        self.sim.hub.publish(chat.id, self.sim.store.finish_step(chat, output_tokens))
        self.sim.metrics.stage("commit", since(began))

    def _attempt(self, chat: ChatState) -> None:
        """``RecordGenerationAttempt`` before an LLM call or a tool batch (spec §9.2)."""
        self.sim.hub.publish(chat.id, self.sim.store.record_attempt(chat))

    async def _retry(self, chat: ChatState, attempt: int, failure: Failure, scale: float) -> None:
        """Publish chatretry's notice for failed ``attempt`` and wait out its backoff (the
        provider's ``Retry-After`` if longer; both scaled by ``time_scale``)."""
        delay = plans.retry_delay_s(attempt, failure.retry_after_s)
        at = datetime.now(UTC) + timedelta(seconds=delay * scale)
        self.sim.metrics.retry(*self._model(chat), failure.kind)
        self.sim.hub.publish(
            chat.id, self.sim.store.retry(chat, attempt, int(delay * 1000), failure, at)
        )
        began = time.perf_counter_ns()
        await sleep_for(delay * scale)
        self.sim.metrics.stage("retry_backoff", since(began))

    def _planned_args(self, chat: ChatState, name: str, shape: plans.TurnShape) -> dict[str, Any]:
        """The built-in generator's arguments for a call of ``name`` (as chatload's mock LLM
        makes them, ``mockllm/plan.py``)."""
        if name == SPAWN_AGENT:
            number = len(chat.children) + 1
            child: dict[str, int] = {"subagents_this_turn": 0}
            if shape.subagent_tools is not None:
                child["tool_calls_this_turn"] = shape.subagent_tools
            task = f"{render(**child)}\nSub-agent task {number}."
            return {"type": SUBAGENT_TYPE, "prompt": task, "title": f"sub-agent {number}"}
        if name == WAIT_AGENT:
            waited = chat.children[-1].id if chat.children else ""
            return {"chat_id": waited}
        return {"command": shape.command}

    async def _run_tool(
        self, chat: ChatState, call_id: str, name: str, args: dict[str, Any]
    ) -> Any:
        """Run one tool call the server executes, after its step's commit (section 10.4):
        the tool's attempt, the tool's time, its ``tool-result`` part, then the ``tool``
        message's commit. Returns the result, for the LLM's next request."""
        sim, store, hub = self.sim, self.sim.store, self.sim.hub
        began = time.perf_counter_ns()
        self._attempt(chat)
        counts = sim.counters.of(chat.id)
        counts.tool_calls[name] = counts.tool_calls.get(name, 0) + 1
        result, is_error = await self._tool(chat, name, args)
        if is_error:
            counts.tool_errors += 1
        streamed, committed = store.run_tools(chat, [(call_id, name, result, is_error)])
        hub.publish(chat.id, streamed)
        hub.publish(chat.id, committed)
        sim.metrics.stage("tool_call", since(began))
        return result

    async def _tool(self, chat: ChatState, name: str, args: dict[str, Any]) -> tuple[Any, bool]:
        """What a tool call returns, and whether it is an error."""
        if name == SPAWN_AGENT:
            return self._spawn(chat, args)
        if name == WAIT_AGENT:
            return await self._wait_agent(chat, args)
        if name in WORKSPACE_TOOLS and chat.workspace_id is None:
            return NO_WORKSPACE, True
        await sleep_for(self.sim.config.tool_time_ms.sample(self.sim.rng) / 1000)
        if name == EXECUTE:
            return {"output": "chatload\n", "exit_code": 0}, False
        return {"output": f"chatload sim ran {name}"}, False

    def _spawn(self, chat: ChatState, args: dict[str, Any]) -> tuple[Any, bool]:
        """``spawn_agent`` (section 10.3): a child chat with the parent's workspace, its own
        turn on the sub-agent pool; the result at once."""
        if chat.parent_chat_id is not None:
            # Guess at the wording: Coder does not offer the tool to a sub-agent at all.
            return "sub-agents cannot spawn sub-agents", True
        prompt = str(args.get("prompt") or "").strip() or "Sub-agent task."
        kind = str(args.get("type") or SUBAGENT_TYPE)
        title = str(args.get("title") or "").strip() or "Sub-agent"
        store, hub = self.sim.store, self.sim.hub
        content = [ChatMessagePart(type="text", text=prompt)]
        child, events = store.create(None, content, chat.model_config_id, parent=chat, title=title)
        hub.publish(child.id, events)
        self.sim.counters.of(chat.id).subagents_spawned += 1
        self.start(child)
        return {
            "chat_id": child.id,
            "title": child.title,
            "status": child.status,
            "type": kind,
        }, False

    async def _wait_agent(self, chat: ChatState, args: dict[str, Any]) -> tuple[Any, bool]:
        """``wait_agent``: wait for the child's turn to end; its report (its last assistant
        text), or ``timed_out``."""
        child_id = str(args.get("chat_id") or "")
        child = next((c for c in chat.children if c.id == child_id), None)
        if child is None:
            return f"sub-agent {child_id} not found", True  # guess at the wording
        timeout = args.get("timeout_seconds")
        limit = float(timeout) if isinstance(timeout, int | float) and timeout > 0 else None
        task = self.tasks.get(child.id)
        timed_out = False
        if task is not None and not task.done():
            done, _ = await asyncio.wait({task}, timeout=limit or WAIT_AGENT_TIMEOUT_S)
            timed_out = not done
        result: dict[str, Any] = {
            "chat_id": child.id,
            "title": child.title,
            "status": child.status,
            "type": SUBAGENT_TYPE,
        }
        if timed_out:
            result["timed_out"] = True
        else:
            result["report"] = _report(child)
        return result, False


def _report(child: ChatState) -> str:
    """A sub-agent's report: the text of its last assistant message."""
    for message in reversed(child.messages):
        if message.role == "assistant":
            text = "".join(p.text or "" for p in message.content or () if p.type == "text")
            if text:
                return text
    return ""
