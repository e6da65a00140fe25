"""The cluster supervisor's argument building: the replicas get ``chatload sim``'s flags
without the supervisor's own (no process is started here)."""

from __future__ import annotations

import pytest

from loadtest.sim.cluster.processes import CLUSTER_FLAGS, replica_argv


def test_the_supervisors_flags_are_dropped_with_their_values() -> None:
    argv = [
        "--era", "d",
        "--replicas", "3",
        "--pubsub=nats",
        "--port", "0",
        "--parts-per-turn", "4",
        "--database-url", "postgres://u:p@h/db",
        "--seed=7",
    ]  # fmt: skip
    assert replica_argv(argv) == ["--era", "d", "--parts-per-turn", "4", "--seed=7"]


@pytest.mark.parametrize("flag", sorted(CLUSTER_FLAGS))
def test_each_cluster_flag_is_kept_from_the_replicas(flag: str) -> None:
    assert replica_argv([flag, "v", "--keep"]) == ["--keep"]
    assert replica_argv([f"{flag}=v", "--keep"]) == ["--keep"]
