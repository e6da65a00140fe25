"""One pubsub interface over PostgreSQL LISTEN/NOTIFY and NATS, as Coder's replicas use them.

PostgreSQL, as coderd/database/pubsub/pubsub.go does it: publish with
``select pg_notify(<channel>, <payload>)``; one listening connection per replica, one
``LISTEN`` per channel. psycopg holds a connection's lock while it waits for notifications,
so the listener waits in short turns and runs queued ``LISTEN``s between them (a new
subscription takes effect within ``LISTEN_TURN_S``; deliveries are not delayed). NATS, as
Coder's embedded NATS pubsub does it: a channel travels on the subject
``protocol.subjects.legacy_event_subject`` makes of it (``chat:stream:<chat>`` ->
``coder.v1.pubsub.chat.stream.<chat>``); a channel Coder would refuse is refused here too.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from loadtest.protocol.notify import NOTIFY_PAYLOAD_LIMIT
from loadtest.protocol.subjects import SubjectError, legacy_event_subject

#: Called with (channel, payload) for each message, on the event loop.
Listener = Callable[[str, bytes], None]
LISTEN_TURN_S = 0.05
#: Channels whose NATS subject is kept, at most (then the cache starts again).
SUBJECT_CACHE = 10_000


class PubsubError(RuntimeError):
    """The pubsub refused or lost something; the message never holds a password."""


def redacted(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


class Pubsub(ABC):
    """Publish bytes on a channel; call listeners of that channel with what arrives."""

    kind: str

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}

    @abstractmethod
    async def publish(self, channel: str, payload: bytes) -> None: ...

    async def flush(self) -> None:  # noqa: B027 (a no-op where nothing is buffered)
        """Wait until what was published has left (NATS buffers; pg_notify does not)."""

    async def subscribe(self, channel: str, listener: Listener) -> None:
        first = channel not in self._listeners
        self._listeners.setdefault(channel, []).append(listener)
        if first:
            await self._listen(channel)

    async def unsubscribe(self, channel: str, listener: Listener) -> None:
        listeners = self._listeners.get(channel)
        if listeners is None or listener not in listeners:
            return
        listeners.remove(listener)
        if not listeners:
            del self._listeners[channel]
            await self._unlisten(channel)

    @abstractmethod
    async def _listen(self, channel: str) -> None: ...

    @abstractmethod
    async def _unlisten(self, channel: str) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    def _deliver(self, channel: str, payload: bytes) -> None:
        for listener in self._listeners.get(channel, ()):
            listener(channel, payload)


async def connect(url: str) -> Pubsub:
    """A pubsub for ``postgresql://…`` or ``nats://…``."""
    scheme = urlsplit(url).scheme
    if scheme in ("postgres", "postgresql"):
        return await PostgresPubsub.connect(url)
    if scheme in ("nats", "tls"):
        return await NatsPubsub.connect(url)
    raise PubsubError(f"pubsub URL {redacted(url)!r}: expected postgresql://… or nats://…")


class PostgresPubsub(Pubsub):
    kind = "postgres"

    def __init__(self, publisher: Any, listener: Any) -> None:
        super().__init__()
        self._publisher = publisher
        self._listener = listener
        #: (LISTEN or UNLISTEN, channel, done) for the reader to run between its waits.
        self._pending: asyncio.Queue[tuple[str, str, asyncio.Future[None]]] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, url: str) -> PostgresPubsub:
        import psycopg

        try:
            publisher = await psycopg.AsyncConnection.connect(url, autocommit=True)
            listener = await psycopg.AsyncConnection.connect(url, autocommit=True)
        except psycopg.OperationalError as exc:
            raise PubsubError(
                f"cannot reach PostgreSQL at {redacted(url)}: {_first_line(exc)}"
            ) from None
        return cls(publisher, listener)

    async def publish(self, channel: str, payload: bytes) -> None:
        if len(payload) >= NOTIFY_PAYLOAD_LIMIT:
            raise PubsubError(
                f"payload of {len(payload)} bytes on {channel}: PostgreSQL NOTIFY takes under "
                f"{NOTIFY_PAYLOAD_LIMIT}"
            )
        await self._publisher.execute("SELECT pg_notify(%s, %s)", (channel, payload.decode()))

    async def _listen(self, channel: str) -> None:
        await self._command("LISTEN", channel)

    async def _unlisten(self, channel: str) -> None:
        await self._command("UNLISTEN", channel)

    async def _command(self, verb: str, channel: str) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._pending.put((verb, channel, done))
        await done

    async def _read(self) -> None:
        from psycopg import sql

        while True:
            while not self._pending.empty():
                verb, channel, done = self._pending.get_nowait()
                try:
                    command = sql.SQL(verb + " {}").format(sql.Identifier(channel))
                    await self._listener.execute(command)
                except Exception as exc:  # handed to the subscriber, who raises it
                    done.set_exception(PubsubError(f"{verb} {channel}: {_first_line(exc)}"))
                else:
                    done.set_result(None)
            async for note in self._listener.notifies(timeout=LISTEN_TURN_S):
                self._deliver(note.channel, note.payload.encode())

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        for conn in (self._publisher, self._listener):
            with contextlib.suppress(Exception):
                await conn.close()


class NatsPubsub(Pubsub):
    kind = "nats"

    def __init__(self, client: Any) -> None:
        super().__init__()
        self._client = client
        self._subscriptions: dict[str, Any] = {}
        #: channel -> its subject: computed once per channel, not per publish.
        self._subjects: dict[str, str] = {}

    def subject(self, channel: str) -> str:
        """The NATS subject of ``channel`` (PubsubError for one Coder would refuse)."""
        subject = self._subjects.get(channel)
        if subject is None:
            try:
                subject = legacy_event_subject(channel)
            except SubjectError as exc:
                raise PubsubError(str(exc)) from None
            if len(self._subjects) >= SUBJECT_CACHE:
                self._subjects.clear()  # chats come and go: keep the cache bounded
            self._subjects[channel] = subject
        return subject

    @classmethod
    async def connect(cls, url: str) -> NatsPubsub:
        import nats

        async def quiet(_error: Exception) -> None:
            """nats-py logs every failed attempt unless given its own error callback."""

        try:
            # nats-py may retry an unreachable server for ever: the whole connect is bounded.
            client = await asyncio.wait_for(
                nats.connect(
                    url,
                    connect_timeout=5,
                    allow_reconnect=False,
                    max_reconnect_attempts=1,
                    reconnect_time_wait=0.1,
                    error_cb=quiet,
                ),
                timeout=10,
            )
        except TimeoutError:
            raise PubsubError(f"cannot reach NATS at {redacted(url)}: no answer in 10 s") from None
        except Exception as exc:
            raise PubsubError(f"cannot reach NATS at {redacted(url)}: {_first_line(exc)}") from None
        return cls(client)

    async def publish(self, channel: str, payload: bytes) -> None:
        await self._client.publish(self.subject(channel), payload)

    async def flush(self) -> None:
        await self._client.flush()

    async def _listen(self, channel: str) -> None:
        async def handler(message: Any) -> None:
            self._deliver(channel, message.data)

        subject = self.subject(channel)
        self._subscriptions[channel] = await self._client.subscribe(subject, cb=handler)
        await self._client.flush()  # the server has the subscription when this returns

    async def _unlisten(self, channel: str) -> None:
        subscription = self._subscriptions.pop(channel, None)
        if subscription is not None:
            await subscription.unsubscribe()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._client.close()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
