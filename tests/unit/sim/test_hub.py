"""The hub: each event encoded once for every stream, faults queued in order, backpressure."""

from __future__ import annotations

import asyncio

from loadtest.sim.events import FRAME_BREAK
from loadtest.sim.hub import HIGH_WATER, LOW_WATER, ChatCounts, Hub


def _part(n: int) -> dict[str, object]:
    return {"type": "message_part", "n": n}


def test_an_event_is_encoded_once_whatever_the_number_of_streams() -> None:
    hub = Hub()
    a, b = hub.subscribe("c", []), hub.subscribe("c", [])
    hub.publish("c", [_part(1), {"type": FRAME_BREAK}])
    assert a.queue[0][1] is b.queue[0][1] == b'{"type":"message_part","n":1}'
    assert a.queue[1] == (FRAME_BREAK, None, 0)
    hub.publish("other", [_part(2)])  # no stream: nothing kept
    assert len(a.queue) == 2


def test_a_burst_is_one_item_per_run_of_its_kind() -> None:
    hub = Hub()
    sub = hub.subscribe("c", [])
    hub.publish_burst("c", "message_part", [_part(1), _part(2), {"type": "status"}, _part(3)])
    assert [(kind, n) for kind, _, n in sub.queue] == [
        ("message_part", 2),
        ("status", 1),
        ("message_part", 1),
    ]
    assert sub.queue[0][1] == b'{"type":"message_part","n":1},{"type":"message_part","n":2}'


def test_a_fault_goes_behind_what_each_stream_already_has() -> None:
    hub = Hub()
    sub = hub.subscribe("c", [_part(0)])
    hub.inject("c", "drop")
    assert [kind for kind, _, _ in sub.queue] == ["message_part", "drop"]
    assert sub.snapshot_left == 1


def test_a_slow_stream_makes_the_generator_wait_until_it_drains() -> None:
    async def scenario() -> None:
        hub = Hub()
        sub = hub.subscribe("c", [])
        for n in range(HIGH_WATER + 1):
            hub.publish_one("c", _part(n))
        assert hub.congested("c")
        waiting = asyncio.create_task(hub.drain("c"))
        await asyncio.sleep(0)
        assert not waiting.done()
        while len(sub.queue) > LOW_WATER:  # the writer drains it
            sub.queue.popleft()
        sub.room.set()
        await asyncio.wait_for(waiting, 5)
        assert not hub.congested("c")

    asyncio.run(scenario())


def test_unsubscribing_tells_the_stream_once_and_forgets_the_chat() -> None:
    hub = Hub()
    sub = hub.subscribe("c", [])
    told: list[int] = []
    sub.on_close = lambda: told.append(1)
    hub.unsubscribe(sub)
    hub.unsubscribe(sub)
    assert told == [1] and sub.closed and "c" not in hub.subscribers


def test_counts_add_up_across_chats_with_their_maps() -> None:
    one, two = ChatCounts(), ChatCounts()
    one.frames, two.frames = 2, 3
    one.faults["drop"] = 1
    two.faults["drop"] = 2
    two.faults["stall"] = 1
    two.tool_calls["execute"] = 4
    one.add(two)
    wire = one.wire()
    assert wire["frames"] == 5 and wire["faults"] == {"drop": 3, "stall": 1}
    assert wire["tool_calls"] == {"execute": 4}
