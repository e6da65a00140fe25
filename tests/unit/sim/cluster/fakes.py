"""A pubsub held in memory: the replica tests' stand-in for NATS or PostgreSQL."""

from __future__ import annotations

from loadtest.pubsub.bus import Pubsub


class MemoryPubsub(Pubsub):
    kind = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.listening: set[str] = set()

    async def publish(self, channel: str, payload: bytes) -> None:
        self._deliver(channel, payload)

    async def _listen(self, channel: str) -> None:
        self.listening.add(channel)

    async def _unlisten(self, channel: str) -> None:
        self.listening.discard(channel)

    async def close(self) -> None:
        self.listening.clear()
