"""The simulator's faults, each declared once: config key, flag, help and the counter it bumps.

The ``[faults]`` config model (``config.Faults``), the replicas' settings
(``cluster.config.ReplicaFaults``), the flags, the turn planner's list and the counters are all
derived from ``SIM_FAULTS``: a new fault is one entry here plus the code that plays it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, create_model

#: Where a fault acts: once per ``turn`` (mid-way through its first step, on every stream of
#: the chat), per ``stream`` connection, per text ``part`` (integrity: never a step's last),
#: or in a ``replica`` of ``chatload sim --replicas`` (its pubsub notifies and relayed parts).
Scope = Literal["turn", "stream", "part", "replica"]


@dataclass(frozen=True, slots=True)
class SimFault:
    """One fault: what it is called where it is played and counted, and how it is set."""

    #: What the code that plays it is handed (a turn fault's queue item, a part fault's name).
    name: str
    scope: Scope
    #: Its setting's key: in ``[faults]`` of the config file and ``PATCH /__sim/config``
    #: (scopes turn, stream, part), or in a replica's settings (scope replica).
    key: str
    help: str
    #: The count in ``GET /__sim/counts`` it increments (a chat's, or a replica's).
    counter: str
    #: A probability (P, 0..1), or a delay in milliseconds (MS).
    metavar: Literal["P", "MS"] = "P"

    @property
    def flag(self) -> str:
        """Its ``chatload sim`` flag: the key with dashes."""
        return "--" + self.key.replace("_", "-")

    def field(self) -> tuple[type[float], Any]:
        """Its pydantic field: 0 by default, a probability or a non-negative delay."""
        high = 1.0 if self.metavar == "P" else None
        extra: dict[str, Any] = {"metavar": self.metavar, "flag": self.flag}
        return float, Field(0.0, ge=0, le=high, description=self.help, json_schema_extra=extra)


SIM_FAULTS: Final[tuple[SimFault, ...]] = (
    SimFault(
        "drop", "turn", "drop_rate", "fault: cut the streams mid-turn, no close frame (1006)",
        "faults.drop",
    ),
    SimFault(
        "stall", "turn", "stall_rate", "fault: stop writing mid-turn for --stall-ms",
        "faults.stall",
    ),
    SimFault(
        "malformed", "turn", "malformed_rate", "fault: send one text frame that is not JSON",
        "faults.malformed",
    ),
    SimFault(
        "close", "turn", "close_rate", "fault: close the streams mid-turn with --close-code",
        "faults.close",
    ),
    SimFault(
        "stream_error", "stream", "stream_error_rate",
        "fault: fail a stream on connect (era a: error frame; later: HTTP 500)",
        "faults.stream_error",
    ),
    # Integrity faults: what a lossy relay does to the parts every stream of the chat gets;
    # counted as each stream delivers the break a client can see (era d numbers parts).
    SimFault(
        "part_drop", "part", "part_drop_rate", "integrity fault: never send a text delta",
        "integrity.seq_gaps",
    ),
    SimFault(
        "part_duplicate", "part", "part_duplicate_rate",
        "integrity fault: send a text delta twice", "integrity.seq_duplicates",
    ),
    SimFault(
        "part_reorder", "part", "part_reorder_rate",
        "integrity fault: send a text delta after the one that follows it",
        "integrity.seq_out_of_order",
    ),
    SimFault(
        "notify_drop", "replica", "notify_drop_rate", "fault: drop a pubsub notify",
        "replica.notifies_dropped",
    ),
    SimFault(
        "notify_delay", "replica", "notify_delay_ms",
        "fault: delay every pubsub notify by this many ms", "replica.notifies_delayed", "MS",
    ),
    SimFault(
        "relay_drop", "replica", "relay_drop_rate",
        "fault: a replica drops a relayed text part (never an episode's last)",
        "replica.relay_parts_dropped",
    ),
    SimFault(
        "relay_duplicate", "replica", "relay_duplicate_rate",
        "fault: a replica sends a relayed text part twice", "replica.relay_parts_duplicated",
    ),
)  # fmt: skip

BY_NAME: Final = {fault.name: fault for fault in SIM_FAULTS}
#: At most one of these hits a turn, tried in this order (``plan.plan``).
TURN_FAULTS: Final = tuple(fault for fault in SIM_FAULTS if fault.scope == "turn")
PART_FAULTS: Final = tuple(fault for fault in SIM_FAULTS if fault.scope == "part")
REPLICA_FAULTS: Final = tuple(fault for fault in SIM_FAULTS if fault.scope == "replica")
STREAM_ERROR: Final = BY_NAME["stream_error"]
NOTIFY_DROP: Final = BY_NAME["notify_drop"]
NOTIFY_DELAY: Final = BY_NAME["notify_delay"]
RELAY_DROP: Final = BY_NAME["relay_drop"]
RELAY_DUPLICATE: Final = BY_NAME["relay_duplicate"]
#: The part faults' names, as ``config.FaultSettings.part_faults`` hands them to the store.
PART_DROP: Final = BY_NAME["part_drop"].name
PART_DUPLICATE: Final = BY_NAME["part_duplicate"].name
PART_REORDER: Final = BY_NAME["part_reorder"].name


class FaultRates(BaseModel):
    """A model whose fields are faults' settings (made by ``fault_model``)."""

    model_config = ConfigDict(extra="forbid")

    def rate(self, fault: SimFault) -> float:
        """The fault's setting (a probability, or a delay in ms for ``notify_delay``)."""
        return float(getattr(self, fault.key))


M = TypeVar("M", bound=FaultRates)


def fault_model(name: str, base: type[M], scopes: tuple[Scope, ...], doc: str) -> type[M]:
    """``base`` with one field per fault of ``scopes``, in ``SIM_FAULTS``' order."""
    fields: dict[str, Any] = {f.key: f.field() for f in SIM_FAULTS if f.scope in scopes}
    model = create_model(name, __base__=base, __module__=base.__module__, **fields)
    model.__doc__ = doc
    return model
