"""What a replica is told and what it counts: worker ids stable across restarts, settings
that round-trip as JSON, counts on the wire."""

from __future__ import annotations

from loadtest.sim.cluster.config import ReplicaCounts, ReplicaSettings


def _settings(index: int) -> ReplicaSettings:
    return ReplicaSettings(index=index, count=3, database_url="db", pubsub_url="ps", seed=1)


def test_a_replicas_worker_id_is_fixed_by_its_index() -> None:
    assert _settings(2).worker_id == "00000000-0000-4000-8000-000000000002"
    assert _settings(2).worker_id == _settings(2).worker_id != _settings(1).worker_id


def test_settings_round_trip_through_json() -> None:
    settings = _settings(1)
    assert ReplicaSettings.model_validate_json(settings.model_dump_json()) == settings
    assert (settings.lease_s, settings.legacy) == (3.0, False)


def test_counts_start_at_zero_and_the_wire_is_a_copy() -> None:
    counts = ReplicaCounts()
    wire = counts.wire()
    assert wire["relays_served"] == 0 and wire["relay_headers"] == []
    counts.chats_taken_over += 1
    assert wire["chats_taken_over"] == 0 and counts.wire()["chats_taken_over"] == 1
