"""What a replica of a simulated Coder cluster is told, shares and counts: settings, schema, counts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol

from pydantic import BaseModel, Field

from loadtest.protocol.eras import ChatPaths
from loadtest.sim.faults import FaultRates, fault_model
from loadtest.sim.player import Player
from loadtest.sim.turn_steps import Deployment
from loadtest.sim.watch_hub import WatchHub


class Cluster(Deployment, Protocol):
    """What a replica needs of the simulated deployment it is part of (``state.Sim``): the
    seam that keeps the state, which owns its replica, from being imported here."""

    player: Player
    watch: WatchHub
    paths: ChatPaths


#: The replica's settings travel to its process in this environment variable (JSON).
REPLICA_ENV: Final = "CHATLOAD_SIM_REPLICA"

#: What chatd's tables keep (coderd/x/chatd/ARCHITECTURE.md): a chat's row with its versions,
#: and messages with their revision (the snapshot of the transaction that last wrote them)
#: and a soft-delete mark, so a stream loop syncs as Coder's does.
SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS sim_replicas (
    worker_id text PRIMARY KEY, url text NOT NULL, heartbeat timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS sim_chats (
    id uuid PRIMARY KEY, owner_id text NOT NULL, worker_id text NOT NULL, status text NOT NULL,
    chat jsonb NOT NULL, queue_changed boolean NOT NULL DEFAULT false,
    queue jsonb NOT NULL DEFAULT '[]', last_error jsonb
);
ALTER TABLE sim_chats
    ADD COLUMN IF NOT EXISTS snapshot_version bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS history_version bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS generation_attempt bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS queue_version bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS retry_state jsonb,
    ADD COLUMN IF NOT EXISTS retry_state_version bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS pending_actions jsonb;
CREATE TABLE IF NOT EXISTS sim_messages (
    chat_id uuid NOT NULL, id bigint NOT NULL, event jsonb NOT NULL, PRIMARY KEY (chat_id, id)
);
ALTER TABLE sim_messages
    ADD COLUMN IF NOT EXISTS revision bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS deleted boolean NOT NULL DEFAULT false;
"""


if TYPE_CHECKING:
    ReplicaFaults = FaultRates  # read by name: ``faults.rate(fault)``
else:
    ReplicaFaults = fault_model(
        "ReplicaFaults", FaultRates, ("replica",), "A replica's faults (scope replica)."
    )


class ReplicaSettings(BaseModel):
    """What one replica process is told by ``chatload sim --replicas``."""

    index: int
    count: int
    database_url: str
    pubsub_url: str
    lease_s: float = 3.0
    #: A replica of the previous version: publishes and reads only the legacy ``error``.
    legacy: bool = False
    #: Faults on this replica's pubsub and relay, counted in ReplicaCounts.
    faults: ReplicaFaults = Field(default_factory=ReplicaFaults)
    seed: int | None = None

    @property
    def worker_id(self) -> str:
        # A fixed id per index: a restarted replica is the same worker.
        return f"00000000-0000-4000-8000-{self.index:012d}"


class ReplicaCounts:
    """What one replica published, broke on purpose and took over (``/__sim/counts``)."""

    def __init__(self) -> None:
        self.notifies_published = 0
        self.notifies_dropped = 0
        self.notifies_delayed = 0
        self.notifies_colossal = 0
        self.notify_bytes_max = 0
        self.relay_parts_dropped = 0
        self.relay_parts_duplicated = 0
        self.chats_taken_over = 0
        #: Edits of another replica's chat that this replica's streams were refreshed for.
        self.refreshes_mirrored = 0
        #: Relay dials this replica served, and the headers the last one carried beyond the
        #: websocket handshake's own (spec §9.4: the session token and the source replica).
        self.relays_served = 0
        self.relay_headers: list[str] = []

    def wire(self) -> dict[str, int | list[str]]:
        return dict(vars(self))
