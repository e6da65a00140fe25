"""The worker's side of Coder's relay (spec §9.4) without a socket: control messages, the
part buffer's replay and live delivery per episode, and the token a dial carries."""

from __future__ import annotations

import asyncio

from loadtest.sim.cluster.relay import KEEP_EPISODES, PartBuffer, control, frame, relay_token


def part(seq: int, history: int = 3, attempt: int = 1) -> dict[str, object]:
    body = {"role": "assistant", "part": {"type": "text", "text": f"t{seq}"}}
    body.update(history_version=history, generation_attempt=attempt, seq=seq)
    return {"type": "message_part", "chat_id": "c", "message_part": body}


def test_a_control_message_selects_an_episode_and_anything_else_is_none() -> None:
    assert control('{"history_version": 12, "generation_attempt": 3}') == (12, 3)
    assert control(b'{"generation_attempt": 1, "history_version": 2}') == (2, 1)
    for bad in (
        "",
        "[1, 2]",
        '{"history_version": 1}',
        '{"history_version": "1", "generation_attempt": 1}',
    ):
        assert control(bad) is None, bad


def test_each_part_is_its_own_array() -> None:
    assert frame(part(1)).startswith('[{"type":"message_part"') and frame(part(1)).endswith("]\n")


def test_a_subscriber_gets_the_episode_so_far_then_what_follows_and_nothing_else() -> None:
    async def scenario() -> None:
        buffer = PartBuffer()
        buffer.add("c", (3, 1), [part(1), part(2)])
        buffer.add("c", (3, 2), [part(1, attempt=2)])
        replay, queue = buffer.subscribe("c", (3, 1))
        assert [p["message_part"]["seq"] for p in replay] == [1, 2]
        buffer.add("c", (3, 1), [part(3)])
        buffer.add("c", (3, 2), [part(2, attempt=2)])  # another episode: not this one's
        assert [p["message_part"]["seq"] for p in queue.get_nowait()] == [3]
        assert queue.empty()
        # An episode not begun yet is waited for, not refused.
        early, waiting = buffer.subscribe("c", (5, 1))
        assert early == [] and waiting.empty()
        buffer.add("c", (5, 1), [part(1, history=5)])
        assert len(waiting.get_nowait()) == 1
        buffer.unsubscribe("c", (3, 1), queue)
        buffer.add("c", (3, 1), [part(4)])
        assert queue.empty()

    asyncio.run(scenario())


def test_old_episodes_nobody_reads_are_dropped() -> None:
    async def scenario() -> None:
        buffer = PartBuffer()
        buffer.subscribe("c", (1, 1))  # read: kept however old
        for history in range(2, KEEP_EPISODES + 6):
            buffer.add("c", (history, 1), [part(1, history=history)])
        episodes = buffer.episodes("c")
        assert len(episodes) <= KEEP_EPISODES + 1 and (1, 1) in episodes
        assert (KEEP_EPISODES + 5, 1) in episodes and (2, 1) not in episodes

    asyncio.run(scenario())


def test_the_dial_carries_the_streams_token_as_coder_extracts_it() -> None:
    """Cookie, then the Coder-Session-Token header, then a bearer; never the query."""
    assert relay_token({"coder-session-token": "h"}, {"coder_session_token": "c"}) == "c"
    assert relay_token({"coder-session-token": "h", "authorization": "Bearer b"}, {}) == "h"
    assert relay_token({"authorization": "bearer  b "}, {}) == "b"
    assert relay_token({"authorization": "Basic x"}, {}) == ""
