"""How a worker joins a master's run: its hello, the run it is given, or why it is refused.

A worker takes its scenario, settings and tokens from the master, never from its own files
or environment, so a worker image holds no secret and workers on many machines run the same
run. The exchange, over Locust's custom messages (after Locust's own ``client_ready``):

    worker -> master   HELLO   {version, hostname, address, pid}
    master -> worker   RUN     {version, settings (JSON), tokens}     or REFUSED {reason}
    worker -> master   JOINED  {}                                     (its runtime is ready)

The worker says hello once it listens for the answer (a message sent before that would be
lost). A worker of another chatload version is refused: its recorder's figures may not mean
what the master's do, and it is never sent the tokens.

No Locust here (it patches the process with gevent when imported): unit-tested as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HELLO_MESSAGE = "chatload_hello"
RUN_MESSAGE = "chatload_run"
REFUSED_MESSAGE = "chatload_refused"
JOINED_MESSAGE = "chatload_joined"
#: Where a master listens for its workers unless told otherwise: Locust's default port.
MASTER_PORT = 5557


@dataclass(frozen=True)
class WorkerHello:
    """Who a worker is: what it runs and where."""

    version: str
    hostname: str
    #: Its address on the master's network (the source address of its connection).
    address: str
    pid: int

    def to_message(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "hostname": self.hostname,
            "address": self.address,
            "pid": self.pid,
        }

    @classmethod
    def from_message(cls, data: Any) -> WorkerHello:
        """A hello as received; fields a foreign sender left out read as unknown."""
        data = data if isinstance(data, dict) else {}
        return cls(
            version=str(data.get("version", "unknown")),
            hostname=str(data.get("hostname", "unknown")),
            address=str(data.get("address", "unknown")),
            pid=int(data.get("pid") or 0),
        )

    def describe(self) -> str:
        """As messages name a worker: where it runs."""
        where = (
            self.address if self.address == self.hostname else f"{self.address} ({self.hostname})"
        )
        return f"worker at {where}, pid {self.pid}"


def refusal(master_version: str, hello: WorkerHello) -> str | None:
    """Why the master refuses this worker, or None when it may join."""
    if hello.version != master_version:
        return (
            f"it runs chatload {hello.version}, the master chatload {master_version}; "
            "run the same version on the master and every worker"
        )
    return None


def run_message(
    version: str, settings_json: str, tokens: list[str], slot: int = 0, slots: int = 1
) -> dict[str, Any]:
    """The run for one worker: ``slot`` of ``slots`` says which users of the run are its own,
    so workers deal the accounts out between them instead of all starting at the first."""
    return {
        "version": version,
        "settings": settings_json,
        "tokens": list(tokens),
        "slot": slot,
        "slots": slots,
    }


class Roster:
    """The master's view of the workers that said hello: who joined, who was refused."""

    def __init__(self) -> None:
        self.hellos: dict[str, WorkerHello] = {}
        self.joined: set[str] = set()
        self.refused: dict[str, str] = {}
        #: Closed when the run starts: Locust would hand a later worker users before it had
        #: the run.
        self.closed = False

    def hello(self, node_id: str, hello: WorkerHello) -> None:
        self.hellos[node_id] = hello

    def refuse(self, node_id: str, reason: str) -> None:
        self.refused[node_id] = reason

    def join(self, node_id: str) -> None:
        self.joined.add(node_id)

    def name(self, node_id: str) -> str:
        """A worker as the report and messages name it: its address, host and pid."""
        hello = self.hellos.get(node_id)
        return hello.describe() if hello is not None else f"worker {node_id}"
