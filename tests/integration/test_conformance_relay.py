"""Spec §9.4 against a running simulated cluster: ``/chats/{chat}/stream/parts`` as Coder
speaks it. Dialled as a replica would, the worker says nothing until it is told an episode
(``{"history_version", "generation_attempt"}``), then sends that episode's parts, one
``message_part`` per JSON array, ``seq`` exactly the last + 1, and starts over for the next
episode selected on the same connection. The replicas' own relay carries only the session
token and the source replica. Needs PostgreSQL (``make servers``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.integration.conftest import ORGANIZATION
from tests.integration.pubsub_servers import postgres_url  # noqa: F401
from tests.integration.test_sim_replicas import Cluster

RELAY_HEADERS = ["coder-session-token", "x-coder-relay-source-replica"]
#: Slow, long steps: a test has time to learn the episode and dial before it ends; a tool
#: round trip gives each turn more episodes.
SLOW = ("--ttft", "50", "--part-gap", "40", "--parts-per-turn", "24", "--tool-steps", "1")


@pytest.fixture
def cluster(postgres_url: str) -> Iterator[Cluster]:  # noqa: F811 (the fixture)
    server = Cluster(2, "--pubsub", "postgres", *SLOW)
    yield server
    server.stop()


def _dial(cluster: Cluster, replica: int, chat_id: str) -> ClientConnection:
    url = cluster.urls[replica].replace("http://", "ws://")
    return connect(
        # The enterprise dialer's path in every era (its TestStreamPartsDialerDialsPartsEndpoint).
        f"{url}/api/experimental/chats/{chat_id}/stream/parts",
        additional_headers={
            "Coder-Session-Token": cluster.token,
            "X-Coder-Relay-Source-Replica": "00000000-0000-4000-8000-0000000000ff",
        },
        compression=None,
        open_timeout=10,
    )


def _next_part(stream: ClientConnection, after: tuple[int, int] | None) -> dict[str, Any]:
    """The first part on the chat stream of an episode other than ``after``."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for event in orjson.loads(stream.recv(timeout=20)):
            if event["type"] != "message_part":
                continue
            body = event["message_part"]
            if (body["history_version"], body["generation_attempt"]) != after:
                return body
    raise AssertionError("no part of a new episode")


def _select(relay: ClientConnection, episode: tuple[int, int]) -> None:
    history, attempt = episode
    relay.send(orjson.dumps({"history_version": history, "generation_attempt": attempt}).decode())


def _parts(relay: ClientConnection, episode: tuple[int, int], count: int) -> list[dict[str, Any]]:
    """``count`` frames from the relay, each checked to be one part of ``episode``."""
    got = []
    for _ in range(count):
        frame = relay.recv(timeout=10)
        assert isinstance(frame, str)
        events = orjson.loads(frame)
        assert isinstance(events, list) and len(events) == 1, frame
        (event,) = events
        assert event["type"] == "message_part", frame
        body = event["message_part"]
        assert (body["history_version"], body["generation_attempt"]) == episode
        got.append(body)
    return got


def test_the_parts_endpoint_serves_the_selected_episode_part_by_part(cluster: Cluster) -> None:
    headers = {"Coder-Session-Token": cluster.token}
    chat = httpx.post(
        f"{cluster.urls[0]}/api/v2/chats",
        headers=headers,
        json={"content": [{"type": "text", "text": "hello"}], "organization_id": ORGANIZATION},
        timeout=10,
    ).json()
    url = cluster.urls[0].replace("http://", "ws://") + f"/api/v2/chats/{chat['id']}/stream"
    with (
        connect(url, additional_headers=headers, compression=None) as stream,
        _dial(cluster, 0, chat["id"]) as relay,
    ):
        # No hello: nothing comes until an episode is selected.
        with pytest.raises(TimeoutError):
            relay.recv(timeout=0.3)
        first = _next_part(stream, None)
        episode = (first["history_version"], first["generation_attempt"])
        _select(relay, episode)
        # What the episode buffered so far from 1, then the rest as it comes.
        parts = _parts(relay, episode, 6)
        assert [p["seq"] for p in parts] == [1, 2, 3, 4, 5, 6]
        # Another episode on the same connection: numbered from 1 again.
        second = _next_part(stream, episode)
        following = (second["history_version"], second["generation_attempt"])
        assert following != episode
        _select(relay, following)
        seqs = []
        with contextlib.suppress(TimeoutError):
            while True:  # until the step ends (a tool-call step has few parts)
                frame = relay.recv(timeout=1.0)
                (event,) = orjson.loads(frame)
                body = event["message_part"]
                if (body["history_version"], body["generation_attempt"]) == following:
                    seqs.append(body["seq"])
        assert seqs and seqs == list(range(1, len(seqs) + 1)), seqs


def test_a_stream_on_another_replica_relays_with_only_the_token_and_its_id(
    cluster: Cluster,
) -> None:
    headers = {"Coder-Session-Token": cluster.token}
    chat = httpx.post(
        f"{cluster.urls[0]}/api/v2/chats",
        headers=headers,
        json={"content": [{"type": "text", "text": "hello"}], "organization_id": ORGANIZATION},
        timeout=10,
    ).json()
    url = cluster.urls[1].replace("http://", "ws://") + f"/api/v2/chats/{chat['id']}/stream"
    with connect(url, additional_headers=headers, compression=None) as stream:
        text: list[str] = []
        committed: dict[str, Any] | None = None
        while committed is None:
            for event in orjson.loads(stream.recv(timeout=20)):
                if event["type"] == "message_part":
                    text.append(event["message_part"]["part"].get("text") or "")
                elif event["type"] == "message" and event["message"]["role"] == "assistant":
                    committed = event["message"]
                    break
    served = cluster.counts(0)["replica"]
    assert served["relays_served"] >= 1
    assert served["relay_headers"] == RELAY_HEADERS
    # The first step's parts crossed, in order: its committed text starts with them (all of
    # them unless the commit's sync overtook the relay, which Coder's stream loop allows).
    assert text and committed is not None
    assert "".join(p.get("text", "") for p in committed["content"]).startswith("".join(text))
