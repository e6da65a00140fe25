"""Turns played out in time: one asyncio task per running chat, as chatd's worker.

A turn is either planned in-process (``plan.plan``) or, with an LLM URL configured,
streamed from a mock LLM. Either way the same core methods make the events, so both speak
the same protocol; this module only sleeps, publishes and counts.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

import httpx
import orjson

from loadtest.mockllm.coder_tools import EXECUTE, SPAWN_AGENT, SUBAGENT_TYPE, WAIT_AGENT
from loadtest.mockllm.control import find_control, render
from loadtest.protocol.agents import POOL_ROOT, POOL_SUBAGENT, POOLS
from loadtest.protocol.constants import NO_WORKSPACE, WAIT_AGENT_TIMEOUT_S
from loadtest.protocol.eras import Era
from loadtest.protocol.models import ChatMessagePart, ErrorKind
from loadtest.sim import plan as plans
from loadtest.sim.catalog import Catalog
from loadtest.sim.chat_state import Chat
from loadtest.sim.chaterror import failure as provider_failure
from loadtest.sim.chats import ChatStore
from loadtest.sim.config import MAX_ATTEMPTS, SimConfig
from loadtest.sim.events import Failure
from loadtest.sim.hub import Counters, Hub
from loadtest.sim.llm import LLMError, stream_chat
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


#: LLM steps one turn may take before the simulator stops it (guess: chatd's own cap on a
#: turn's steps was not found; this only stops a runaway LLM).
MAX_LLM_STEPS: Final = 64
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


def offered_tools(chat: Chat) -> list[dict[str, Any]]:
    """The tools a chat's LLM request declares."""
    if chat.parent_chat_id is None:
        return [_EXECUTE_TOOL, *_SUBAGENT_TOOLS]
    return [_EXECUTE_TOOL]


def _pool(chat: Chat) -> str:
    """The concurrent-agent gate's pool of a chat (``coderd_chatd_agents_active{pool}``)."""
    return POOL_ROOT if chat.parent_chat_id is None else POOL_SUBAGENT


def last_prompt(chat: Chat) -> str:
    """The text of the chat's last user message: the turn's prompt."""
    for message in reversed(chat.messages):
        if message.role == "user":
            return "".join(p.text or "" for p in message.content or () if p.type == "text")
    return ""


#: Tokens of shared LLM throughput a turn spends before its first output (its prompt).
PREFILL_TOKENS: Final = 50


async def _sleep(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)


def _since(began_ns: int) -> float:
    """Seconds from ``began_ns`` (``perf_counter_ns``) to now."""
    return (time.perf_counter_ns() - began_ns) / 1e9


class Player:
    """Plays each running chat's turns out in time, one asyncio task per chat."""

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

    def answer(self, chat_id: str) -> None:
        """The client posted the tool results its chat was waiting for."""
        answered = self._answered.pop(chat_id, None)
        if answered is not None:
            answered.set()

    def _first_output(self, chat_id: str) -> None:
        accepted = self._accepted.pop(chat_id, None)
        if accepted is not None:
            self.sim.counters.first_output_ms.append((time.perf_counter_ns() - accepted) / 1e6)

    def start(self, chat: Chat) -> None:
        """Run the chat's new turn (and any queued turns after it) in the background. The
        turn counts as started now, even if an interrupt cancels it before it runs."""
        self._accepted[chat.id] = self._runnable[chat.id] = time.perf_counter_ns()
        self.sim.counters.of(chat.id).turns_started += 1
        task = asyncio.create_task(self.run(chat))
        self.tasks[chat.id] = task
        task.add_done_callback(self._forget(chat.id))

    def _forget(self, chat_id: str) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            if self.tasks.get(chat_id) is task:
                del self.tasks[chat_id]

        return done

    def agents(self) -> dict[str, tuple[int, int]]:
        """Per pool: turns holding an agent slot now, and turns queued for one (8.7)."""
        return {
            pool: (self._running[pool], sum(not slot.done() for slot in self._waiting[pool]))
            for pool in self._running
        }

    async def stop(self, chat_id: str) -> bool:
        """Cancel the chat's run and wait until it has stopped; whether one was running."""
        self._accepted.pop(chat_id, None)
        self._runnable.pop(chat_id, None)
        self._answered.pop(chat_id, None)
        task = self.tasks.pop(chat_id, None)
        if task is None or task.done():
            return False
        task.cancel()
        await asyncio.wait({task})
        return True

    async def close(self) -> None:
        for task in list(self.tasks.values()):
            task.cancel()
        self.tasks.clear()
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # ------------------------------------------------------------ one run

    async def run(self, chat: Chat) -> None:
        """The turn the caller started (and counted), then the queued turns after it: each
        ends ``waiting``/``error`` or promotes the next."""
        sim = self.sim
        while True:
            config = sim.config
            runnable = self._runnable.pop(chat.id, time.perf_counter_ns())
            await asyncio.sleep(config.acquire_ms.sample(sim.rng) / 1000)
            acquired = time.perf_counter_ns()
            sim.metrics.stage("queue_wait", (acquired - runnable) / 1e9)
            if chat.status == "pending":
                sim.hub.publish(chat.id, sim.store.running(chat))
            try:
                ok = await self._gated_turn(chat, config)
            finally:
                # Observed before the turn's end is published (no await between), so a
                # client that saw the end finds the turn in a scrape taken after it.
                sim.metrics.stage("chat_turn", _since(acquired))
            counts = sim.counters.of(chat.id)
            if not ok:
                self._accepted.pop(chat.id, None)
                counts.turns_failed += 1
                return
            counts.turns_completed += 1
            events, promoted = sim.store.finish_turn(chat)
            sim.hub.publish(chat.id, events)
            sim.store.retitle(chat)
            if not promoted:
                return
            self._accepted[chat.id] = self._runnable[chat.id] = time.perf_counter_ns()
            sim.counters.of(chat.id).turns_started += 1
            await asyncio.sleep(0)

    async def _gated_turn(self, chat: Chat, config: SimConfig) -> bool:
        """The turn once past the concurrent-agent gate: whether it ended well."""
        admitted = await self._admit(chat)
        pool = _pool(chat)
        self._running[pool] += 1
        try:
            # A provider configured with a base URL (``chatload setup``), or --llm-url, puts
            # a real LLM tier behind the chat; otherwise turns are generated here.
            if self.sim.catalog.llm_base_url(chat.model_config_id, config.llm_url) is not None:
                return await self._llm_turn(chat, config)
            return await self._planned_turn(chat, config)
        finally:
            self._running[pool] -= 1
            if admitted is not None:
                self._release(admitted)

    async def _admit(self, chat: Chat) -> str | None:
        """Pass the concurrent-agent gate (section 8.7) in the chat's pool, waiting
        queued_for_capacity when it is full; the pool whose slot was taken (none without the
        gate)."""
        pool = _pool(chat)
        limit = self.sim.config.pool_limit(pool == POOL_SUBAGENT)
        if limit is None:
            return None
        waiting = self._waiting[pool]
        if self._admitted[pool] < limit and not waiting:
            self._admitted[pool] += 1
            return pool
        self.sim.store.capacity(chat, queued=True)
        queued = time.perf_counter_ns()
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting.append(slot)
        try:
            await slot  # a finishing turn hands its slot over (``_release``)
        except asyncio.CancelledError:
            if slot.done() and not slot.cancelled():
                self._release(pool)  # handed over as this turn was cancelled: pass it on
            raise
        # Coder records capacity_wait only for a chat that was refused a slot first.
        self.sim.metrics.capacity_wait(_since(queued))
        self.sim.store.capacity(chat, queued=False)
        return pool

    def _release(self, pool: str) -> None:
        waiting = self._waiting[pool]
        while waiting:
            slot = waiting.popleft()
            if not slot.done():
                slot.set_result(None)
                return
        self._admitted[pool] -= 1

    async def _share(self, tokens: float) -> None:
        """Wait for ``tokens`` of the shared LLM throughput, split across generating turns."""
        rate = self.sim.config.llm_tokens_per_s
        if rate:
            await asyncio.sleep(tokens * max(1, self._generating) / rate)

    def _provider(self, chat: Chat) -> str:
        model = self.sim.catalog.models.get(chat.model_config_id)
        return model.provider if model else "openai"

    def _model(self, chat: Chat) -> tuple[str, str]:
        """The ``provider`` and ``model`` labels of the chat's metrics."""
        model = self.sim.catalog.models.get(chat.model_config_id)
        return (model.provider, model.model) if model else ("openai", "gpt-sim")

    def _first_token(self, chat: Chat, attempt_began: int) -> None:
        self.sim.metrics.first_token(_since(attempt_began), *self._model(chat))

    def _commit(self, chat: Chat, output_tokens: int | None) -> None:
        """Persist the step's assistant message and publish it (the ``commit`` stage)."""
        began = time.perf_counter_ns()
        self.sim.hub.publish(chat.id, self.sim.store.finish_step(chat, output_tokens))
        self.sim.metrics.stage("commit", _since(began))

    async def _planned_turn(self, chat: Chat, config: SimConfig) -> bool:
        sim, store, hub = self.sim, self.sim.store, self.sim.hub
        try:
            control = find_control(last_prompt(chat))
        except ValueError as exc:  # a typo fails the turn, as Coder's control block did
            self._attempt(chat)
            hub.publish(
                chat.id, store.fail(chat, provider_failure(ErrorKind.GENERIC, "", 400, str(exc)))
            )
            return False
        shape = plans.Shape.of(config, control, chat.parent_chat_id is None)
        plan = plans.plan(config, sim.rng, self._provider(chat), shape)
        failure = plan.failure
        for attempt in range(1, plan.failed_attempts + 1):
            assert failure is not None
            self._attempt(chat)
            if sim.rng.random() < config.partial_output_ratio:
                await self._partial_output(chat, plan.ttft, config)
            if plan.final_failure and (attempt >= MAX_ATTEMPTS or not failure.retryable):
                hub.publish(chat.id, store.fail(chat, failure))
                return False
            await self._retry(chat, attempt, failure, config.time_scale)
        self._generating += 1
        try:
            return await self._generate(chat, config, plan, shape)
        finally:
            self._generating -= 1

    async def _generate(
        self, chat: Chat, config: SimConfig, plan: plans.TurnPlan, shape: plans.Shape
    ) -> bool:
        """A planned turn's successful attempt: its steps, in time."""
        sim, hub = self.sim, self.sim.hub
        began = time.perf_counter_ns()
        self._attempt(chat)
        await _sleep(plan.ttft)
        await self._share(PREFILL_TOKENS)
        self._first_output(chat.id)
        self._first_token(chat, began)
        fault = plan.fault
        steps = list(plan.steps)
        # A first step that ends in a dynamic tool the client runs, then the planned steps.
        client_tool = sim.store.era is Era.D and sim.rng.random() < config.requires_action_ratio
        if client_tool:
            steps.insert(0, plans.Step(None, steps[0].reasoning, steps[0].text, steps[0].gaps))
        for index, step in enumerate(steps):
            if index:
                self._attempt(chat)  # the next LLM call
            deltas = [("reasoning", t) for t in step.reasoning] + [("text", t) for t in step.text]
            cut = plan.fault_at if index == 0 else len(deltas)
            broken = config.faults.part_faults(sim.rng, len(deltas))
            await self._deltas(chat, deltas[:cut], step.gaps[:cut], broken and broken[:cut])
            if fault is not None:
                hub.inject(chat.id, fault)
                fault = None
            await self._deltas(chat, deltas[cut:], step.gaps[cut:], broken and broken[cut:])
            if index == 0 and client_tool:
                await self._requires_action(chat, plan.output_tokens)
                continue
            if step.call is None:
                self._commit(chat, plan.output_tokens)
                continue
            # Section 10.4: the complete call, the step's commit, then the tool runs.
            call_id = f"call_{uuid.uuid4().hex[:24]}"
            args = self._planned_args(chat, step.call, shape)
            sim.hub.publish(chat.id, sim.store.tool_call(chat, call_id, step.call, args))
            self._commit(chat, plan.output_tokens)
            await self._run_tool(chat, call_id, step.call, args)
        # One stream per attempt here (Coder opens one per generation step).
        sim.metrics.stage("stream", _since(began), self._model(chat))
        return True

    async def _requires_action(self, chat: Chat, output_tokens: int | None) -> None:
        """End the step in a dynamic tool call and wait, as chatd does, for the client's
        ``POST /tool-results`` (whose handler commits the result and wakes this run): the
        step's commit first, then, in a transaction of its own, ``requires_action`` (spec
        §9.3). Past the deadline chatd answers the call with a cancellation and runs on."""
        sim, store, hub = self.sim, self.sim.store, self.sim.hub
        answered = self._answered[chat.id] = asyncio.Event()
        call_id = f"call_{uuid.uuid4().hex[:24]}"
        began = time.perf_counter_ns()
        hub.publish(
            chat.id,
            store.requires_action(
                chat, call_id, "chatload_client_tool", {"input": "chatload"}, output_tokens
            ),
        )
        sim.metrics.stage("commit", _since(began))
        await asyncio.sleep(0)
        hub.publish(chat.id, store.enter_requires_action(chat))
        sim.counters.of(chat.id).actions_required += 1
        began = time.perf_counter_ns()
        try:
            await asyncio.wait_for(answered.wait(), sim.config.requires_action_timeout_ms / 1000)
        except TimeoutError:
            self._answered.pop(chat.id, None)
            hub.publish(chat.id, store.cancel_requires_action(chat))
            sim.counters.of(chat.id).actions_cancelled += 1
        self.sim.metrics.stage("tool_call", _since(began))

    def _attempt(self, chat: Chat) -> None:
        """``RecordGenerationAttempt`` before an LLM call or a tool batch (spec §9.2)."""
        self.sim.hub.publish(chat.id, self.sim.store.record_attempt(chat))

    async def _partial_output(self, chat: Chat, ttft: float, config: SimConfig) -> None:
        """An attempt that streams some text, then fails: its parts are thrown away."""
        began = time.perf_counter_ns()
        await _sleep(ttft)
        self._first_output(chat.id)
        self._first_token(chat, began)
        count = max(1, config.parts_per_turn // 4)
        text = "x" * config.part_chars
        gaps = config.part_gap_ms.samples(self.sim.rng, count, scale=0.001)
        broken = config.faults.part_faults(self.sim.rng, count)
        await self._deltas(chat, [("text", text)] * count, gaps, broken)
        self.sim.metrics.stage("stream", _since(began), self._model(chat))

    async def _deltas(
        self,
        chat: Chat,
        deltas: list[tuple[str, str]],
        gaps: tuple[float, ...],
        faults: list[str | None] | None = None,
    ) -> None:
        """Stream text deltas, each after its gap; with no gaps, as one burst (an LLM that
        answers at once), which the writers then batch into few frames. ``faults``: the
        integrity fault of each delta (``SimConfig.faults.part_faults``)."""
        store, hub = self.sim.store, self.sim.hub
        if not any(gaps):
            if deltas:
                parts = store.text_parts(chat, deltas, faults)
                hub.publish_burst(chat.id, "message_part", parts)
                if hub.congested(chat.id):
                    await hub.drain(chat.id)
            return
        for index, ((kind, text), gap) in enumerate(zip(deltas, gaps, strict=True)):
            await asyncio.sleep(gap)
            await self._share(len(text) / 4)
            if faults is None and chat.held is None:
                hub.publish_one(chat.id, store.text_part(chat, kind, text))
            else:
                fault = None if faults is None else faults[index]
                hub.publish(chat.id, store.text_parts(chat, [(kind, text)], [fault]))
            if hub.congested(chat.id):
                await hub.drain(chat.id)

    async def _retry(self, chat: Chat, attempt: int, failure: Failure, scale: float) -> None:
        """Publish chatretry's notice for failed ``attempt`` and wait out its backoff (the
        provider's ``Retry-After`` if longer; both scaled by ``time_scale``)."""
        delay = plans.retry_delay_s(attempt, failure.retry_after_s)
        at = datetime.now(UTC) + timedelta(seconds=delay * scale)
        self.sim.metrics.retry(*self._model(chat), failure.kind)
        self.sim.hub.publish(
            chat.id, self.sim.store.retry(chat, attempt, int(delay * 1000), failure, at)
        )
        began = time.perf_counter_ns()
        await _sleep(delay * scale)
        self.sim.metrics.stage("retry_backoff", _since(began))

    def _planned_args(self, chat: Chat, name: str, shape: plans.Shape) -> dict[str, Any]:
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

    async def _run_tool(self, chat: Chat, call_id: str, name: str, args: dict[str, Any]) -> Any:
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
        sim.metrics.stage("tool_call", _since(began))
        return result

    async def _tool(self, chat: Chat, name: str, args: dict[str, Any]) -> tuple[Any, bool]:
        """What a tool call returns, and whether it is an error."""
        if name == SPAWN_AGENT:
            return self._spawn(chat, args)
        if name == WAIT_AGENT:
            return await self._wait_agent(chat, args)
        if name in WORKSPACE_TOOLS and chat.workspace_id is None:
            return NO_WORKSPACE, True
        await _sleep(self.sim.config.tool_time_ms.sample(self.sim.rng) / 1000)
        if name == EXECUTE:
            return {"output": "chatload\n", "exit_code": 0}, False
        return {"output": f"chatload sim ran {name}"}, False

    def _spawn(self, chat: Chat, args: dict[str, Any]) -> tuple[Any, bool]:
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

    async def _wait_agent(self, chat: Chat, args: dict[str, Any]) -> tuple[Any, bool]:
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

    # ------------------------------------------------------------ the LLM tier

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=5.0))
        return self._client

    async def _llm_turn(self, chat: Chat, config: SimConfig) -> bool:
        sim, store, hub = self.sim, self.sim.store, self.sim.hub
        target = sim.catalog.llm_base_url(chat.model_config_id, config.llm_url)
        assert target is not None
        base_url, api_key = target
        model = sim.catalog.models.get(chat.model_config_id)
        name = model.model if model else "gpt-sim"
        history = _conversation(chat)
        tools = offered_tools(chat)
        for _ in range(MAX_LLM_STEPS):
            calls: dict[int, dict[str, Any]] = {}
            usage: dict[str, Any] = {}
            attempt = 0
            while True:
                attempt += 1
                self._attempt(chat)
                began, first = time.perf_counter_ns(), True
                try:
                    async for kind, payload in stream_chat(
                        self._http(), base_url, api_key, name, history, tools
                    ):
                        if kind == "usage":
                            usage = payload
                            continue
                        self._first_output(chat.id)
                        if first:
                            self._first_token(chat, began)
                            first = False
                        if kind == "text":
                            hub.publish_one(chat.id, store.text_part(chat, "text", payload))
                        else:  # section 10.4, 1: each argument delta as it comes
                            call, delta = _merge_tool_delta(calls, payload)
                            if delta:
                                hub.publish(
                                    chat.id,
                                    store.tool_call_delta(chat, call["id"], call["name"], delta),
                                )
                        if hub.congested(chat.id):
                            await hub.drain(chat.id)
                    sim.metrics.stage("stream", _since(began), self._model(chat))
                    break
                except LLMError as error:
                    sim.metrics.stage("stream", _since(began), self._model(chat))
                    if not error.failure.retryable or attempt >= MAX_ATTEMPTS:
                        hub.publish(chat.id, store.fail(chat, error.failure))
                        return False
                    sim.counters.of(chat.id).llm_retries += 1
                    calls.clear()
                    await self._retry(chat, attempt, error.failure, config.time_scale)
            text = "".join(chat.text)
            for call in calls.values():
                hub.publish(
                    chat.id, store.tool_call_complete(chat, call["id"], call["name"], call["args"])
                )
            self._commit(chat, usage.get("completion_tokens"))
            if not calls:
                return True
            history.append(_assistant_with_calls(text, calls))
            for call in calls.values():
                result = await self._run_tool(chat, call["id"], call["name"], call["args"])
                content = result if isinstance(result, str) else orjson.dumps(result).decode()
                history.append({"role": "tool", "tool_call_id": call["id"], "content": content})
        return True


def _report(child: Chat) -> str:
    """A sub-agent's report: the text of its last assistant message."""
    for message in reversed(child.messages):
        if message.role == "assistant":
            text = "".join(p.text or "" for p in message.content or () if p.type == "text")
            if text:
                return text
    return ""


def _conversation(chat: Chat) -> list[dict[str, Any]]:
    """The chat's history as Chat Completions messages."""
    history = []
    for message in chat.messages:
        text = "".join(p.text or "" for p in message.content or () if p.type == "text")
        if message.role in ("user", "assistant") and text:
            history.append({"role": message.role, "content": text})
    return history


def _merge_tool_delta(
    calls: dict[int, dict[str, Any]], delta: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """Fold one streamed tool-call delta into its call: (the call, the argument text it
    added)."""
    call = calls.setdefault(delta.get("index", 0), {"id": "", "name": "", "raw": ""})
    call["id"] = delta.get("id") or call["id"] or f"call_{uuid.uuid4().hex[:24]}"
    function = delta.get("function") or {}
    call["name"] = function.get("name") or call["name"]
    added = function.get("arguments") or ""
    call["raw"] += added
    try:
        args = orjson.loads(call["raw"] or "{}")
    except orjson.JSONDecodeError:
        args = None
    call["args"] = args if isinstance(args, dict) else {"raw": call["raw"]}
    return call, added


def _assistant_with_calls(text: str, calls: dict[int, dict[str, Any]]) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": text or None,
        "tool_calls": [
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": call["raw"] or "{}"},
            }
            for call in calls.values()
        ],
    }
