"""Watch lag pairs each status change of a chat once per socket, whichever side is first."""

from __future__ import annotations

from loadtest.core.histogram import Histogram
from loadtest.core.watch import MAX_CHATS, RECENT, WatchLag
from loadtest.report.model import Summary


def test_the_watch_after_the_stream_is_a_positive_lag_once_per_socket() -> None:
    lag = WatchLag()
    assert lag.stream_saw("c", "waiting", 100) == []
    assert lag.watch_saw("c", "waiting", 130, socket=0) == [30]
    assert lag.watch_saw("c", "waiting", 150, socket=1) == [50]
    assert lag.watch_saw("c", "waiting", 160, socket=0) == []  # already paired: it waits


def test_the_watch_first_is_negative_and_a_second_turn_pairs_with_its_own_change() -> None:
    lag = WatchLag()
    lag.stream_saw("c", "running", 0)
    assert lag.watch_saw("c", "running", 5, socket=0) == [5]
    assert lag.stream_saw("c", "waiting", 100) == []
    assert lag.watch_saw("c", "waiting", 104, socket=0) == [4]
    # Turn 2: the watch hears of it before the stream; turn 1's running is not reused.
    assert lag.watch_saw("c", "running", 200, socket=0) == []
    assert lag.stream_saw("c", "running", 207) == [-7]


def test_chats_do_not_mix() -> None:
    lag = WatchLag()
    lag.stream_saw("a", "waiting", 10)
    assert lag.watch_saw("b", "waiting", 20, socket=0) == []
    assert lag.stream_saw("b", "waiting", 25) == [-5]


def test_a_signed_summary_ranks_the_negatives_first() -> None:
    negative, positive = Histogram(), Histogram()
    for value in (3000, 1000):  # -3 ms, -1 ms
        negative.record(value)
    for value in (2000, 4000):  # 2 ms, 4 ms
        positive.record(value)
    summary = Summary.signed(negative, positive, 1000.0)
    assert summary.count == 4
    assert (summary.min, summary.max, summary.mean) == (-3.0, 4.0, 0.5)
    assert summary.p50 == -1.0 and summary.p99 == 4.0


def test_events_about_chats_not_followed_cost_a_bounded_ring_and_pair_nothing() -> None:
    lag = WatchLag()
    lag.stream_saw("mine", "running", 0)
    for n in range(100_000):  # a shared account: everyone else's chats, on every socket
        for status in ("running", "waiting"):
            assert lag.watch_saw(f"other-{n}", status, n, socket=n % 3) == []
    assert len(lag) == 1  # only the chat whose stream this side follows
    assert len(lag._recent) == RECENT
    assert lag.watch_saw("mine", "running", 9, socket=0) == [9]


def test_a_chat_announced_before_its_creator_heard_back_still_pairs() -> None:
    lag = WatchLag()
    assert lag.watch_saw("new", "running", 100, socket=0) == []
    for n in range(RECENT - 1):  # other chats' events in between, fewer than the ring holds
        lag.watch_saw(f"other-{n}", "running", 101, socket=0)
    assert lag.stream_saw("new", "running", 130) == [-30]


def test_a_forgotten_chat_is_freed_and_pairs_no_more() -> None:
    lag = WatchLag()
    lag.stream_saw("done", "waiting", 10)
    lag.forget("done")
    assert len(lag) == 0
    assert lag.watch_saw("done", "waiting", 20, socket=0) == []


def test_followed_chats_are_bounded_even_if_never_forgotten() -> None:
    lag = WatchLag()
    for n in range(MAX_CHATS + 50):
        lag.stream_saw(f"c{n}", "running", n)
    assert len(lag) == MAX_CHATS
