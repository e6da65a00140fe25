"""A storm's barriers across processes: the coordinator releases when every user counted in,
workers count in by message and date the master's release on their own clock."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import gevent
from locust.runners import MasterRunner, WorkerRunner

from loadtest.core.profiles import Storm as StormProfile
from loadtest.core.storm import FOLLOW_UP, START
from loadtest.locust.storm import COUNT_MESSAGE, RELEASE_MESSAGE, StormSide

MS = 1_000_000


class FakeMaster(MasterRunner):
    """A master that only records what it would send to its workers."""

    def __init__(self) -> None:  # no sockets, no greenlets: Locust's own are not started
        self.sent: list[tuple[str, Any]] = []
        self.greenlet = None

    def send_message(self, msg_type: str, data: Any = None, client_id: str | None = None) -> None:
        self.sent.append((msg_type, data))


class FakeWorker(WorkerRunner):
    """A worker that only records what it would send to its master."""

    def __init__(self) -> None:  # no sockets, no greenlets: Locust's own are not started
        self.sent: list[tuple[str, Any]] = []
        self.greenlet = None

    def send_message(self, msg_type: str, data: Any = None, client_id: str | None = None) -> None:
        self.sent.append((msg_type, data))


def test_one_process_releases_its_users_once_the_last_is_ready() -> None:
    storm = StormSide(StormProfile(users=3), turns=2, runner=None)
    storm.ready()
    storm.ready()
    assert storm.wait(START, 0.01) is None
    before = time.perf_counter_ns()
    storm.ready()
    released = storm.wait(START, 0)
    assert released is not None and before <= released <= time.perf_counter_ns()
    assert not storm.gated and storm.wait(FOLLOW_UP, 0.01) is None
    for _ in range(3):
        storm.chat_done()
    assert storm.finished


def test_follow_ups_wait_for_every_first_turn_then_the_delay() -> None:
    storm = StormSide(StormProfile(users=2, turn_start_delay=0.05), turns=3, runner=None)
    assert storm.gated
    for _ in range(2):
        storm.ready()
    storm.initial_ended()
    assert storm.wait(FOLLOW_UP, 0.1) is None  # one first turn still runs
    last_ended = time.perf_counter_ns()
    storm.initial_ended()
    released = storm.wait(FOLLOW_UP, 5)
    assert released is not None and released - last_ended >= 50 * MS


def test_one_turn_leaves_nothing_to_hold() -> None:
    assert not StormSide(StormProfile(users=2, turn_start_delay=5), turns=1, runner=None).gated


def test_a_worker_counts_in_by_message_and_dates_the_masters_release() -> None:
    runner = FakeWorker()
    storm = StormSide(StormProfile(users=1), turns=2, runner=runner)
    storm.ready()
    storm.chat_done()
    assert runner.sent == [(COUNT_MESSAGE, {"ready": 1}), (COUNT_MESSAGE, {"done": 1})]
    assert storm.wait(START, 0.01) is None and not storm.finished  # the master decides
    # The master released 20 ms ago by its wall clock: the worker dates it that far back.
    sent_at = time.time_ns() - 20 * MS
    storm._on_release(SimpleNamespace(data={"phase": START, "wall_ns": sent_at}))
    released = storm.wait(START, 0)
    assert released is not None and released <= time.perf_counter_ns() - 20 * MS


def test_the_master_releases_every_worker_when_their_users_are_all_in() -> None:
    runner = FakeMaster()
    storm = StormSide(StormProfile(users=4, turn_start_delay=0.01), turns=2, runner=runner)
    storm._on_count(SimpleNamespace(data={"ready": 3}))
    assert runner.sent == []
    before = time.time_ns()
    storm._on_count(SimpleNamespace(data={"ready": 1}))
    assert [(kind, data["phase"]) for kind, data in runner.sent] == [(RELEASE_MESSAGE, START)]
    assert runner.sent[0][1]["wall_ns"] >= before
    storm._on_count(SimpleNamespace(data={"initial_ended": 4}))
    assert len(runner.sent) == 1, "the follow-ups wait for the delay"
    # The delay, then the follow-ups go to every worker at once: wait for that (bounded),
    # not for a fixed time a busy machine may outlast.
    deadline = time.monotonic() + 10
    while len(runner.sent) < 2 and time.monotonic() < deadline:
        gevent.sleep(0.01)
    assert [data["phase"] for _, data in runner.sent] == [START, FOLLOW_UP]
    storm._on_count(SimpleNamespace(data={"done": 4}))
    assert storm.finished
