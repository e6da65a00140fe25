"""A Locust run as a library call: its worker count, its id, and when a replay has ended."""

from __future__ import annotations

import uuid

from loadtest.core.measurement import Measurement
from loadtest.core.recorder import REPLAY_PREFIX
from loadtest.locust import runtime
from loadtest.protocol.eras import Era
from loadtest.runner.locust_run import LocustRun, RemoteWorkers, replayed
from loadtest.scenario import Scenario


def settings(workers: int) -> runtime.RunSettings:
    scenario = Scenario.model_validate({"load": {"users": 2, "workers": workers}})
    return runtime.RunSettings(scenario=scenario, host="http://x", era=Era.D)


def test_a_replay_has_ended_when_every_chat_has() -> None:
    def live(ended: int) -> Measurement:
        return Measurement(counts={REPLAY_PREFIX + "chats_ended": ended})

    assert not replayed(lambda: live(11), 12)
    assert replayed(lambda: live(12), 12)
    assert replayed(lambda: Measurement(), 0)


def test_each_run_has_its_own_id_and_counts_local_or_remote_workers() -> None:
    local = LocustRun(settings(3), ["t"])
    remote = LocustRun(settings(3), ["t"], remote=RemoteWorkers(expect=5))
    assert (local.worker_count, remote.worker_count) == (3, 5)
    assert uuid.UUID(local.run_id) and local.run_id != remote.run_id
    assert local.runtime.recorder is not remote.runtime.recorder, "each run reports only itself"
