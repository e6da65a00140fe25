"""``chatload run`` across the replicas of one deployment (``--host`` more than once).

Three independent simulators stand for three replicas where each chat stays on the replica
its driver created it on: each replica's figures in the report must equal what that
simulator sent. One simulator reached by two names (127.0.0.1 and localhost) stands for a
deployment whose replicas share state: watchers then stream from the other replica, and a
dropped stream reconnects to the next one.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from loadtest.pubsub.servers import free_port
from loadtest.runner.processes import SimProcess
from tests.integration.test_run import PROFILE, Sim, report, run, scenario


def _sims(
    count: int, config: dict[str, object], era: str = "d", token: str | None = None
) -> list[Sim]:
    token = token or secrets.token_urlsafe(18)
    sims = []
    for _ in range(count):
        sim = Sim.__new__(Sim)
        sim.era, sim.token = era, token
        sim.process = SimProcess.start(era, token, {**PROFILE, **config})
        sim.url = sim.process.url
        sims.append(sim)
    return sims


def test_each_replicas_figures_equal_what_that_replica_sent(tmp_path: Path) -> None:
    sims = _sims(3, {})
    try:
        out = tmp_path / "out"
        done = run(
            *(f"--host={sim.url}" for sim in sims),
            f"--token={sims[0].token}",
            "--scenario",
            str(scenario(tmp_path, users=6, spawn_rate=6)),
            "--report-dir",
            str(out),
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        rep = report(out)
        assert rep["run"]["target"]["replicas"] == [sim.url for sim in sims]
        replicas = rep["replicas"]
        assert [r["url"] for r in replicas] == [sim.url for sim in sims]
        for replica, sim in zip(replicas, sims, strict=True):
            sent = sim.counts()
            assert replica["streams"] == sent["streams_opened"] > 0, (replica, sent)
            assert replica["frames"] == sent["frames"]
            assert replica["events"] == sent["events"]
            assert replica["errors"] == 0
            assert replica["time_to_first_output"]["count"] == sent["turns_completed"]
        for name in ("frames", "events"):
            assert rep["counts"][name] == sum(r[name] for r in replicas)
    finally:
        for sim in sims:
            sim.process.stop()


@pytest.mark.slow  # long: make test-all (make test stays under 10 minutes on 2 cores)
def test_watchers_cross_replicas_and_drops_reconnect_to_the_next(tmp_path: Path) -> None:
    (sim,) = _sims(1, {"faults": {"drop_rate": 0.1}})
    other = sim.url.replace("127.0.0.1", "localhost")
    try:
        out = tmp_path / "out"
        path = scenario(tmp_path, users=4, spawn_rate=8, run_time="6s")
        path.write_text(path.read_text() + "watchers_per_chat = 1\nmax_reconnects = 5\n")
        done = run(
            f"--host={sim.url},{other}",
            f"--token={sim.token}",
            "--scenario",
            str(path),
            "--report-dir",
            str(out),
        )
        assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
        rep = report(out)
        first, second = rep["replicas"]
        assert first["streams"] > 0 and second["streams"] > 0
        assert first["streams"] + second["streams"] == sim.counts()["streams_opened"]
        # Every watcher is on the other replica than its chat's driver: statuses pair up.
        lag = rep["latency_ms"]["cross_replica_lag"]
        assert lag["count"] > 0
        # Drops (no close frame) came back on a new socket, after the first backoff.
        counts = rep["counts"]
        assert 0 < counts["reconnects"] <= counts["streams_closed_abnormally"]
        assert rep["reconnects_by_cause"] == {"error": counts["reconnects"]}
        assert rep["latency_ms"]["reconnect_time"]["min"] >= 100
        assert rep["integrity"]["seq_duplicates"] == rep["integrity"]["seq_gaps"] == 0
    finally:
        sim.process.stop()


def test_replicas_of_another_era_or_a_dead_one_are_refused(tmp_path: Path) -> None:
    (newer,) = _sims(1, {})
    (older,) = _sims(1, {}, era="b", token=newer.token)
    try:
        path = scenario(tmp_path)
        mixed = run(
            f"--host={newer.url},{older.url}", f"--token={newer.token}", "--scenario", str(path)
        )
        assert mixed.returncode == 3
        assert f"replica {older.url} speaks era a but {newer.url} era d" in mixed.stderr
        dead = f"http://127.0.0.1:{free_port()}"
        gone = run(
            f"--host={newer.url}",
            f"--host={dead}",
            f"--token={newer.token}",
            "--scenario",
            str(path),
        )
        assert gone.returncode == 3 and f"replica {dead}" in gone.stderr
        assert newer.token not in mixed.stderr + gone.stderr
    finally:
        newer.process.stop()
        older.process.stop()
