"""Protocol §9.5 over the wire: a simulated Coder cluster on a real nats-server publishes each
chat's notifies on Coder's subject, ``coder.v1.pubsub.chat.stream.<chat>``, so a subscriber
to ``coder.v1.pubsub.chat.stream.>`` (as anything watching Coder's NATS would) sees them."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from loadtest.client.preflight import inspect_target
from loadtest.client.rest import ChatClient
from loadtest.protocol.notify import ChatStreamNotifyMessage
from loadtest.protocol.subjects import CHAT_STREAM_WILDCARD, LEGACY_PREFIX, validate_subject
from tests.integration.pubsub_servers import nats_url, postgres_url  # noqa: F401
from tests.integration.test_sim_replicas import Cluster


class Watcher:
    """A plain NATS client in its own thread: every message on ``subjects``, as it came."""

    def __init__(self, url: str, *subjects: str) -> None:
        self.url, self.subjects = url, subjects
        self.got: list[tuple[str, str, bytes]] = []  # (subscription, subject, payload)
        self.ready, self.done = threading.Event(), threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.thread.start()
        assert self.ready.wait(20), f"the NATS watcher did not subscribe: {self.error}"

    async def _run(self) -> None:
        import nats

        try:
            client = await nats.connect(self.url, connect_timeout=5, allow_reconnect=False)
            for subject in self.subjects:

                async def keep(message: Any, on: str = subject) -> None:
                    self.got.append((on, message.subject, message.data))

                await client.subscribe(subject, cb=keep)
            await client.flush()
        except BaseException as exc:
            self.error = exc
            self.ready.set()
            raise
        self.ready.set()
        while not self.done.is_set():
            await asyncio.sleep(0.05)
        await client.close()

    def stop(self) -> None:
        self.done.set()
        self.thread.join(timeout=10)


def test_a_chats_notifies_travel_on_coders_subject(
    nats_url: str,  # noqa: F811
    postgres_url: str,  # noqa: F811
) -> None:
    watcher = Watcher(nats_url, CHAT_STREAM_WILDCARD, ">")
    cluster = Cluster(
        2, "--pubsub", "nats", "--pubsub-url", nats_url, "--database-url", postgres_url
    )
    try:
        target = inspect_target(cluster.urls[0], [cluster.token])
        client = ChatClient(cluster.urls[0], cluster.token, target.era)
        chat, _ = client.create_chat("hello", target.organizations[0])
        client.close()
        subject = LEGACY_PREFIX + "chat.stream." + chat.id
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # bounded: until the turn's end is published
            notes = [p for on, s, p in watcher.got if on == CHAT_STREAM_WILDCARD and s == subject]
            if any(ChatStreamNotifyMessage.decode(p).status == "waiting" for p in notes):
                break
            time.sleep(0.1)
    finally:
        cluster.stop()
        watcher.stop()
    wild = [p for on, s, p in watcher.got if on == CHAT_STREAM_WILDCARD and s == subject]
    assert wild == [p for on, s, p in watcher.got if on == ">" and s == subject]
    notes = [ChatStreamNotifyMessage.decode(p) for p in wild]
    assert any(n.after_message_id for n in notes), notes  # a committed message
    assert [n.status for n in notes if n.status][-1] == "waiting", notes
    # Nothing went out on a raw ``chat:stream:<id>`` (or any subject Coder would refuse).
    for _, seen, _ in watcher.got:
        validate_subject(seen)
        assert seen.startswith(LEGACY_PREFIX), seen
