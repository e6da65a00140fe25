"""The replicas' pubsub, measured: PostgreSQL NOTIFY against NATS with 1, 10 and 100 replicas listening.

Each replica is one subscriber (for PostgreSQL, its own listening connection, as Coder's
``PGPubsub`` has) on one chat's channel; the payload is a real ``ChatStreamNotifyMessage``.
Two phases per setting: paced publishes (200 a second) for the publish -> receive latency a
stream on another replica sees, then publishes back to back for the most messages a second
the pubsub carries to every replica. Publisher and listeners share this process, so at 100
replicas its own CPU is part of the figure for both backends alike.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson

from loadtest.bench.core import Row
from loadtest.core.histogram import Histogram
from loadtest.protocol.notify import ChatStreamNotifyMessage, stream_channel
from loadtest.pubsub.bus import Pubsub, connect
from loadtest.pubsub.servers import NatsServer, PostgresServer

REPLICAS = (1, 10, 100)
PACED_PER_S = 200
#: How long the last deliveries of a burst may lag its last publish before they count as lost.
DRAIN_TIMEOUT_S = 30.0
CHAT_ID = "6a1c1f0e-2f7d-4c52-9d0e-5b3f6c0a9e11"
WORKER_ID = "2d5f7a10-8c3b-4e61-a0f2-7b9c1d3e5f60"


class _Tally:
    """Arrivals per message id, and publish -> receive latency in microseconds."""

    def __init__(self) -> None:
        self.sent_at: dict[int, int] = {}
        self.latency = Histogram()
        self.received = 0
        self.last_at = 0

    def listener(self, channel: str, payload: bytes) -> None:
        now = time.perf_counter_ns()
        sent = self.sent_at.get(orjson.loads(payload)["after_message_id"])
        if sent is not None:
            self.latency.record((now - sent) // 1000)
        self.received += 1
        self.last_at = now


async def _publish(
    publisher: Pubsub, channel: str, tally: _Tally, ids: range, pace_s: float
) -> int:
    started = time.perf_counter()
    for n, message_id in enumerate(ids):
        if pace_s:
            delay = started + n * pace_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        payload = ChatStreamNotifyMessage(
            after_message_id=message_id, status="running", worker_id=WORKER_ID
        ).encode()
        tally.sent_at[message_id] = time.perf_counter_ns()
        await publisher.publish(channel, payload)
        if not pace_s and n % 256 == 0:
            await asyncio.sleep(0)  # let listeners run as a real replica's loop would
    await publisher.flush()
    return len(ids)


async def _drain(tally: _Tally, expected: int) -> None:
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while tally.received < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


async def _measure(url: str, replicas: int, seconds: float) -> tuple[Histogram, float, int]:
    """Latency of paced publishes, then messages a second of a burst, and deliveries lost."""
    channel = stream_channel(CHAT_ID)
    publisher = await connect(url)
    listeners = [await connect(url) for _ in range(replicas)]
    try:
        paced, burst = _Tally(), _Tally()
        current = [paced]  # the burst counts on its own tally
        for listener in listeners:
            await listener.subscribe(channel, lambda c, p: current[0].listener(c, p))
        count = max(20, int(PACED_PER_S * seconds))
        await _publish(publisher, channel, paced, range(1, count + 1), 1 / PACED_PER_S)
        await _drain(paced, count * replicas)
        current[0] = burst
        start = time.perf_counter_ns()
        sent = 0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            sent += await _publish(publisher, channel, burst, range(sent + 1, sent + 501), 0.0)
        await _drain(burst, sent * replicas)
        elapsed_s = max(1, (burst.last_at or time.perf_counter_ns()) - start) / 1e9
        delivered = burst.received / replicas
        lost = paced.received + burst.received - (count + sent) * replicas
        return paced.latency, delivered / elapsed_s, -lost
    finally:
        for bus in (publisher, *listeners):
            await bus.close()


def run_pubsub_bench(seconds: float = 1.0, replicas: tuple[int, ...] = REPLICAS) -> list[Row]:
    rows: list[Row] = []
    rates: dict[tuple[str, int], float] = {}
    servers: list[tuple[str, Callable[[], PostgresServer | NatsServer]]] = [
        ("PostgreSQL NOTIFY", PostgresServer),
        ("NATS", NatsServer),
    ]
    for name, make in servers:
        with make() as server:
            for n in replicas:
                latency, per_s, lost = asyncio.run(_measure(server.url, n, seconds))
                label = f"{name}, {n} replica{'s' if n > 1 else ''}"
                rows.append(
                    (
                        f"{label}: publish -> receive p50",
                        latency.value_at_percentile(50) / 1000,
                        "ms",
                    )
                )
                rows.append(
                    (
                        f"{label}: publish -> receive p99",
                        latency.value_at_percentile(99) / 1000,
                        "ms",
                    )
                )
                rows.append((f"{label}: messages/s to every replica", per_s, "msg/s"))
                if lost:
                    rows.append((f"{label}: deliveries lost", float(lost), "deliveries"))
                rates[name, n] = per_s
    for n in replicas:
        pg, nats = rates.get(("PostgreSQL NOTIFY", n)), rates.get(("NATS", n))
        if pg and nats:
            rows.append(
                (f"NATS / PostgreSQL messages/s, {n} replica{'s' if n > 1 else ''}", nats / pg, "x")
            )
    return rows
