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

from loadtest.protocol.eras import Era
from loadtest.sim import plan as plans
from loadtest.sim.catalog import Catalog
from loadtest.sim.chats import Chat, ChatStore
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


#: Tool round trips an LLM may ask for in one turn before the simulator stops it.
MAX_LLM_STEPS: Final = 8
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
        #: Turns past the concurrent-agent gate now (``coderd_chatd_agents_active``).
        self._running = 0
        #: Chats in ``requires_action``: set when the client posts its tool results.
        self._answered: dict[str, asyncio.Event] = {}
        #: The concurrent-agent gate: turns admitted now, and those waiting, in order.
        self._admitted = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
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

    def agents(self) -> tuple[int, int]:
        """Turns holding an agent slot now, and turns queued for one (section 8.7)."""
        return self._running, sum(not slot.done() for slot in self._waiting)

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
        self._running += 1
        try:
            # A provider configured with a base URL (``chatload setup``), or --llm-url, puts
            # a real LLM tier behind the chat; otherwise turns are generated here.
            if self.sim.catalog.llm_base_url(chat.model_config_id, config.llm_url) is not None:
                return await self._llm_turn(chat, config)
            return await self._planned_turn(chat, config)
        finally:
            self._running -= 1
            if admitted:
                self._release()

    async def _admit(self, chat: Chat) -> bool:
        """Pass the concurrent-agent gate (section 8.7), waiting queued_for_capacity when it
        is full; whether a slot was taken (none without ``agent_limit``)."""
        limit = self.sim.config.agent_limit
        if limit is None:
            return False
        if self._admitted < limit and not self._waiting:
            self._admitted += 1
            return True
        self.sim.store.capacity(chat, queued=True)
        queued = time.perf_counter_ns()
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(slot)
        try:
            await slot  # a finishing turn hands its slot over (``_release``)
        except asyncio.CancelledError:
            if slot.done() and not slot.cancelled():
                self._release()  # handed over as this turn was cancelled: pass it on
            raise
        # Coder records capacity_wait only for a chat that was refused a slot first.
        self.sim.metrics.capacity_wait(_since(queued))
        self.sim.store.capacity(chat, queued=False)
        return True

    def _release(self) -> None:
        while self._waiting:
            slot = self._waiting.popleft()
            if not slot.done():
                slot.set_result(None)
                return
        self._admitted -= 1

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
        plan = plans.plan(config, sim.rng, self._provider(chat))
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
            return await self._generate(chat, config, plan)
        finally:
            self._generating -= 1

    async def _generate(self, chat: Chat, config: SimConfig, plan: plans.TurnPlan) -> bool:
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
        if sim.store.era is Era.D and sim.rng.random() < config.requires_action_ratio:
            steps.insert(1, steps[0])  # the answer after the client's tool result
        for index, step in enumerate(steps):
            if step.tool:
                await self._tool_round_trip(chat, plan.output_tokens)
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
            if index == 0 and len(steps) > len(plan.steps):
                await self._requires_action(chat, plan.output_tokens)
                continue
            self._commit(chat, plan.output_tokens)
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

    async def _tool_round_trip(self, chat: Chat, output_tokens: int | None) -> None:
        """An LLM call that asks for ``execute`` (its own attempt, committed), then the tool
        batch that runs it (another attempt, committed): section 10.4."""
        store, hub = self.sim.store, self.sim.hub
        call_id = f"call_{uuid.uuid4().hex[:24]}"
        args = {"command": "echo chatload"}
        self._attempt(chat)
        hub.publish(chat.id, store.tool_call(chat, call_id, "execute", args))
        self._commit(chat, output_tokens)
        began = time.perf_counter_ns()
        self._attempt(chat)
        result = {"output": "chatload\n", "exit_code": 0}
        streamed, committed = store.run_tools(chat, [(call_id, "execute", result)])
        hub.publish(chat.id, streamed)
        hub.publish(chat.id, committed)
        self.sim.metrics.stage("tool_call", _since(began))

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
                        self._http(), base_url, api_key, name, history
                    ):
                        if kind == "text":
                            self._first_output(chat.id)
                            if first:
                                self._first_token(chat, began)
                                first = False
                            hub.publish_one(chat.id, store.text_part(chat, "text", payload))
                            if hub.congested(chat.id):
                                await hub.drain(chat.id)
                        elif kind == "tool":
                            _merge_tool_delta(calls, payload)
                        else:
                            usage = payload
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
                hub.publish(chat.id, store.tool_call(chat, call["id"], call["name"], call["args"]))
            self._commit(chat, usage.get("completion_tokens"))
            if not calls:
                return True
            history.append(_assistant_with_calls(text, calls))
            self._attempt(chat)  # the tool batch: its results, then one commit
            ran = [
                (call["id"], call["name"], {"output": f"chatload sim ran {call['name']}"})
                for call in calls.values()
            ]
            streamed, committed = store.run_tools(chat, ran)
            hub.publish(chat.id, streamed)
            hub.publish(chat.id, committed)
            for call_id, _, result in ran:
                history.append(
                    {
                        "role": "tool",
                        "tool_call_id": call_id,
                        "content": orjson.dumps(result).decode(),
                    }
                )
        return True


def _conversation(chat: Chat) -> list[dict[str, Any]]:
    """The chat's history as Chat Completions messages."""
    history = []
    for message in chat.messages:
        text = "".join(p.text or "" for p in message.content or () if p.type == "text")
        if message.role in ("user", "assistant") and text:
            history.append({"role": message.role, "content": text})
    return history


def _merge_tool_delta(calls: dict[int, dict[str, Any]], delta: dict[str, Any]) -> None:
    call = calls.setdefault(delta.get("index", 0), {"id": "", "name": "", "raw": ""})
    call["id"] = delta.get("id") or call["id"] or f"call_{uuid.uuid4().hex[:24]}"
    function = delta.get("function") or {}
    call["name"] = function.get("name") or call["name"]
    call["raw"] += function.get("arguments") or ""
    try:
        call["args"] = orjson.loads(call["raw"] or "{}")
    except orjson.JSONDecodeError:
        call["args"] = {"raw": call["raw"]}


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
