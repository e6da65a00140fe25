"""A storm's barriers as counts: each released once, when every chat is there, and only then."""

from __future__ import annotations

from loadtest.core.storm import FOLLOW_UP, START, StormGate, released_at


def test_the_first_turns_are_released_when_the_last_chat_is_ready_and_only_once() -> None:
    gate = StormGate(chats=5)
    # Counts arrive from several processes, in any grouping.
    assert gate.add(ready=2) == [] and gate.add(ready=2) == []
    assert gate.add(ready=1) == [START]
    assert gate.add(ready=1) == [] and gate.add(initial_ended=5) == []
    assert not gate.finished


def test_without_a_delay_follow_ups_are_never_held() -> None:
    gate = StormGate(chats=2, gated=False)
    assert gate.add(ready=2) == [START]
    assert gate.add(initial_ended=2) == []


def test_with_a_delay_the_follow_ups_wait_for_every_first_turn_to_end() -> None:
    gate = StormGate(chats=3, gated=True)
    assert gate.add(ready=3) == [START]
    assert gate.add(initial_ended=2) == []
    # A chat whose first turn failed counts as ended, or the rest would wait for ever.
    assert gate.add(initial_ended=1, done=1) == [FOLLOW_UP]
    assert gate.add(initial_ended=1) == []


def test_the_run_is_over_when_every_chat_is_done() -> None:
    gate = StormGate(chats=3, gated=True)
    gate.add(ready=3, initial_ended=3, done=2)
    assert not gate.finished
    gate.add(done=1)
    assert gate.finished


def test_a_release_is_dated_on_the_local_clock_by_the_time_since_it() -> None:
    # Released at wall 1_000; heard at wall 1_250 (local monotonic 9_000): 250 ns ago.
    assert released_at(9_000, 1_250, 1_000) == 8_750
    # A local wall clock behind the coordinator's never dates it in the future.
    assert released_at(9_000, 900, 1_000) == 9_000
