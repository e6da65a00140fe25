"""The run's own processes: an embedded simulator on a free port (its accounts, its refusal of
a bad config) and local workers, each stopped for good."""

from __future__ import annotations

import socket

import pytest

from loadtest.runner.processes import ProcessError, SimProcess, WorkerProcess, free_port


def test_a_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))


def test_a_simulator_serves_on_its_own_port_makes_accounts_and_stops() -> None:
    sim = SimProcess.start("d", "tok", {})
    try:
        assert sim.url.startswith("http://127.0.0.1:")
        tokens = sim.accounts(3)
        assert len(tokens) == len(set(tokens)) == 3
    finally:
        sim.stop()
    assert sim.proc.poll() is not None


def test_a_config_the_simulator_refuses_is_a_process_error() -> None:
    with pytest.raises(ProcessError, match=r"refused \[sim\] config"):
        SimProcess.start("d", "tok", {"no_such_key": 1})


def test_a_worker_says_what_it_is_and_stops() -> None:
    worker = WorkerProcess.start(free_port())  # no master there: it waits for one
    try:
        assert "running" in worker.describe() or worker.exited
    finally:
        worker.stop()
    assert worker.exited and "exited with code" in worker.describe()
