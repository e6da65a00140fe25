"""The replicas' pubsub on real servers: Coder's notify message crosses PostgreSQL and NATS
intact, in order, to every replica listening; what PostgreSQL cannot carry is refused."""

from __future__ import annotations

import asyncio
import socket

import pytest

from loadtest.bench.pubsub import run_pubsub_bench
from loadtest.protocol.models import ChatError
from loadtest.protocol.notify import ChatStreamNotifyMessage, stream_channel
from loadtest.pubsub.bus import Pubsub, PubsubError, connect
from loadtest.pubsub.servers import free_port
from tests.integration.pubsub_servers import nats_url, postgres_url  # noqa: F401

CHAT = stream_channel("3f0e8c2a-7b1d-4e5f-9a6c-0d2b4f6e8a10")
OTHER = stream_channel("9c8b7a6f-5e4d-4c3b-8a29-1f0e2d3c4b5a")
MESSAGES = [
    ChatStreamNotifyMessage(after_message_id=41),
    ChatStreamNotifyMessage(status="running", worker_id="replica-2"),
    ChatStreamNotifyMessage(
        error_payload=ChatError(message="overloaded", kind="overloaded", retryable=True),
        error="overloaded",
    ),
    ChatStreamNotifyMessage(queue_update=True),
]


async def _exchange(url: str, replicas: int) -> list[list[bytes]]:
    publisher = await connect(url)
    listeners: list[Pubsub] = [await connect(url) for _ in range(replicas)]
    got: list[list[bytes]] = [[] for _ in listeners]
    try:
        for index, listener in enumerate(listeners):
            await listener.subscribe(CHAT, lambda _c, p, i=index: got[i].append(p))
            await listener.subscribe(OTHER, lambda _c, _p: pytest.fail("wrong channel"))
        for message in MESSAGES:
            await publisher.publish(CHAT, message.encode())
        for _ in range(500):  # bounded: 10 s
            if all(len(g) == len(MESSAGES) for g in got):
                break
            await asyncio.sleep(0.02)
        return got
    finally:
        for bus in (publisher, *listeners):
            await bus.close()


@pytest.mark.parametrize("backend", ["postgres_url", "nats_url"])
def test_every_replica_gets_every_message_intact_and_in_order(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(backend)
    got = asyncio.run(_exchange(url, replicas=3))
    for received in got:
        assert [ChatStreamNotifyMessage.decode(p) for p in received] == MESSAGES
        assert received[0] == b'{"after_message_id":41}'


def test_postgres_refuses_a_payload_notify_cannot_carry(postgres_url: str) -> None:  # noqa: F811
    async def publish_big() -> None:
        bus = await connect(postgres_url)
        try:
            huge = ChatStreamNotifyMessage(error="x" * 8000).encode()
            await bus.publish(CHAT, huge)
        finally:
            await bus.close()

    with pytest.raises(PubsubError, match="PostgreSQL NOTIFY takes under 8000"):
        asyncio.run(publish_big())


@pytest.mark.parametrize("scheme", ["postgresql://chatload:pw-s3cret@", "nats://"])
def test_an_unreachable_server_is_a_clear_error_without_secrets(scheme: str) -> None:
    port = free_port()
    with socket.socket() as _closed:  # nothing listens on port
        pass
    with pytest.raises(PubsubError) as caught:
        asyncio.run(connect(f"{scheme}127.0.0.1:{port}/postgres"))
    assert "cannot reach" in str(caught.value) and f"127.0.0.1:{port}" in str(caught.value)
    assert "pw-s3cret" not in str(caught.value)


def test_the_pubsub_bench_measures_both_backends(
    postgres_url: str,  # noqa: F811
    nats_url: str,  # noqa: F811
) -> None:
    """``chatload bench --only pubsub`` in small: every figure measured, nothing lost."""
    rows = run_pubsub_bench(seconds=0.2, replicas=(1, 3))
    figures = {name: value for name, value, _ in rows}
    for backend in ("PostgreSQL NOTIFY", "NATS"):
        for label in ("1 replica", "3 replicas"):
            assert figures[f"{backend}, {label}: publish -> receive p50"] > 0
            assert figures[f"{backend}, {label}: messages/s to every replica"] > 0
            assert f"{backend}, {label}: deliveries lost" not in figures
    assert figures["NATS / PostgreSQL messages/s, 3 replicas"] > 0
