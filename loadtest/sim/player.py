"""Turns played out in time: one asyncio task per running chat, as chatd's worker.

A turn is either planned in-process (``plan.plan``) or, with an LLM URL configured,
streamed from a mock LLM. Either way the same core methods make the events, so both speak
the same protocol; this module only sleeps, publishes and counts.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Final

from loadtest.mockllm.control import find_control
from loadtest.protocol.agents import POOL_ROOT, POOL_SUBAGENT
from loadtest.protocol.eras import Era
from loadtest.protocol.events import MESSAGE_PART
from loadtest.protocol.models import ErrorKind
from loadtest.sim import plan as plans
from loadtest.sim.chat_state import ChatState
from loadtest.sim.chaterror import failure as provider_failure
from loadtest.sim.config import MAX_ATTEMPTS, SimConfig
from loadtest.sim.llm_tier import LLMTier
from loadtest.sim.turn_steps import since, sleep_for


def _pool(chat: ChatState) -> str:
    """The concurrent-agent gate's pool of a chat (``coderd_chatd_agents_active{pool}``)."""
    return POOL_ROOT if chat.parent_chat_id is None else POOL_SUBAGENT


def last_prompt(chat: ChatState) -> str:
    """The text of the chat's last user message: the turn's prompt."""
    for message in reversed(chat.messages):
        if message.role == "user":
            return "".join(p.text or "" for p in message.content or () if p.type == "text")
    return ""


#: Tokens of shared LLM throughput a turn spends before its first output (its prompt).
PREFILL_TOKENS: Final = 50


class Player(LLMTier):
    """Plays each running chat's turns out in time, one asyncio task per chat."""

    def start(self, chat: ChatState) -> None:
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

    async def run(self, chat: ChatState) -> None:
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
                sim.metrics.stage("chat_turn", since(acquired))
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

    async def _gated_turn(self, chat: ChatState, config: SimConfig) -> bool:
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

    async def _admit(self, chat: ChatState) -> str | None:
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
        self.sim.metrics.capacity_wait(since(queued))
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

    async def _planned_turn(self, chat: ChatState, config: SimConfig) -> bool:
        sim, store, hub = self.sim, self.sim.store, self.sim.hub
        try:
            control = find_control(last_prompt(chat))
        except ValueError as exc:  # a typo fails the turn, as Coder's control block did
            self._attempt(chat)
            hub.publish(
                chat.id, store.fail(chat, provider_failure(ErrorKind.GENERIC, "", 400, str(exc)))
            )
            return False
        shape = plans.TurnShape.of(config, control, chat.parent_chat_id is None)
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
        self, chat: ChatState, config: SimConfig, plan: plans.TurnPlan, shape: plans.TurnShape
    ) -> bool:
        """A planned turn's successful attempt: its steps, in time."""
        sim, hub = self.sim, self.sim.hub
        began = time.perf_counter_ns()
        self._attempt(chat)
        await sleep_for(plan.ttft)
        await self._share(PREFILL_TOKENS)
        self._first_output(chat.id)
        self._first_token(chat, began)
        fault = plan.fault
        steps = list(plan.steps)
        # A first step that ends in a dynamic tool the client runs, then the planned steps.
        client_tool = sim.store.era is Era.D and sim.rng.random() < config.requires_action_ratio
        if client_tool:
            steps.insert(0, plans.LlmStep(None, steps[0].reasoning, steps[0].text, steps[0].gaps))
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
        sim.metrics.stage("stream", since(began), self._model(chat))
        return True

    async def _requires_action(self, chat: ChatState, output_tokens: int | None) -> None:
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
        sim.metrics.stage("commit", since(began))
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
        self.sim.metrics.stage("tool_call", since(began))

    async def _partial_output(self, chat: ChatState, ttft: float, config: SimConfig) -> None:
        """An attempt that streams some text, then fails: its parts are thrown away."""
        began = time.perf_counter_ns()
        await sleep_for(ttft)
        self._first_output(chat.id)
        self._first_token(chat, began)
        count = max(1, config.parts_per_turn // 4)
        text = "x" * config.part_chars
        gaps = config.part_gap_ms.samples(self.sim.rng, count, scale=0.001)
        broken = config.faults.part_faults(self.sim.rng, count)
        await self._deltas(chat, [("text", text)] * count, gaps, broken)
        self.sim.metrics.stage("stream", since(began), self._model(chat))

    async def _deltas(
        self,
        chat: ChatState,
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
                hub.publish_burst(chat.id, MESSAGE_PART, parts)
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
