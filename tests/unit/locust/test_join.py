"""Joining a master's run: who may join, and how a worker is named."""

from __future__ import annotations

from loadtest.locust.join import Roster, WorkerHello, refusal

HELLO = WorkerHello(version="1.2.0", hostname="load-7f9c", address="10.0.3.4", pid=41)


def test_a_worker_of_the_masters_version_may_join() -> None:
    assert refusal("1.2.0", HELLO) is None


def test_a_worker_of_another_version_is_refused_saying_both() -> None:
    reason = refusal("1.3.0", HELLO)
    assert reason is not None
    assert "1.2.0" in reason and "1.3.0" in reason


def test_a_hello_survives_the_message_round_trip() -> None:
    assert WorkerHello.from_message(HELLO.to_message()) == HELLO


def test_a_foreign_or_empty_hello_reads_as_unknown_and_is_refused() -> None:
    hello = WorkerHello.from_message(None)
    assert hello.version == "unknown"
    assert refusal("1.2.0", hello) is not None


def test_the_report_names_a_worker_by_address_host_and_pid() -> None:
    roster = Roster()
    roster.hello("load-7f9c_abc", HELLO)
    assert roster.name("load-7f9c_abc") == "worker at 10.0.3.4 (load-7f9c), pid 41"
    # One that never said hello is named by Locust's id.
    assert roster.name("other_123") == "worker other_123"
