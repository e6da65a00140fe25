"""What every load process (local, master or worker) shares: settings, recorder, health.

Settings reach worker processes from the master when they join (``join.py``); the session
tokens travel beside them, never inside, so that settings can be logged and tokens never are.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

import gevent
from pydantic import BaseModel

from loadtest.client.preflight import TargetInfo
from loadtest.client.rest import ChatClient, RequestHook
from loadtest.core.recorder import Recorder
from loadtest.core.watch import WatchLag
from loadtest.procstat import resident_kb
from loadtest.protocol.eras import Era
from loadtest.scenario import Scenario
from loadtest.trace.replay import ReplayPlan

#: The sampler wakes this often: its lateness is the loop lag, and p99 of one-second samples
#: was a handful of values, so one hiccup made it.
LAG_SAMPLE_S = 0.1
#: CPU share is measured over this long.
CPU_SAMPLE_S = 1.0


class RunSettings(BaseModel):
    """A run as every load process needs it. Tokens are not here (see the module's note)."""

    scenario: Scenario
    host: str
    era: Era
    server_version: str | None = None
    #: Pre-2.37 servers: the first stream frame tells era A from B (``era`` is a guess).
    era_from_stream: bool = False
    #: Recorder origins, equal in every process so their time series line up.
    origin_epoch_s: float = 0.0
    #: The recorder's per-turn SLO bounds (µs), for goodput.
    turn_slos: dict[str, int] = {}
    #: Organization per token (index-aligned with the tokens), when the era needs one.
    organizations: list[str | None] = []
    #: Per token: an owner's, which may send ``X-Coder-Bypass-Ratelimit`` (others get 428).
    owners: list[bool] = []
    #: Open loop: this process's share of the arrival rate (turns per second).
    process_arrival_rate: float | None = None
    seed: int | None = None
    #: Every replica of the target (``host`` first) when the run has several; else empty.
    replicas: list[str] = []
    #: Workspace ids chats are created in, round robin (``[target] workspaces``).
    workspaces: list[str] = []
    #: ``--trace``: the trace's users' chats to replay, instead of the scenario's load.
    replay: ReplayPlan | None = None

    @classmethod
    def for_target(cls, scenario: Scenario, target: TargetInfo, **extra: Any) -> RunSettings:
        """Settings for a run of ``scenario`` against what the preflight found."""
        return cls(
            scenario=scenario,
            host=target.url,
            era=target.era,
            server_version=target.server_version,
            era_from_stream=target.era_from_stream,
            organizations=target.organizations,
            owners=target.owners,
            replicas=target.replicas,
            workspaces=target.workspaces,
            **extra,
        )


@dataclass(frozen=True)
class Identity:
    token: str
    organization: str | None
    owner: bool
    #: The replica this user talks to (an index into ``RunSettings.replicas``), if several.
    replica: int | None = None


@dataclass
class Runtime:
    """This process's share of the run."""

    settings: RunSettings
    tokens: list[str]
    recorder: Recorder
    rng: random.Random
    #: Open stream connections of this process (drivers and watchers).
    open_streams: int = 0
    #: Set when the run time is over: users start no new turn.
    stopping: bool = False
    #: The era a stream's first frame showed, when the settings could not tell.
    stream_era: Era | None = None
    #: Chats this process drives now, for StreamWatchers to attach to.
    live_chats: dict[str, int] = field(default_factory=dict)
    #: The REST client of each live chat's driver: a watcher dials the chat's stream with
    #: its owner's login (a chat is its owner's; another account would be refused).
    chat_clients: dict[str, ChatClient] = field(default_factory=dict)
    #: The replica each live chat's driver talks to (several replicas only).
    chat_replicas: dict[str, int] = field(default_factory=dict)
    #: Pairs a status seen by a chat's driver with the same seen by a watcher on another
    #: replica (``cross_replica_lag``), as ``WatchLag`` pairs a stream with a watch socket.
    cross_replica: WatchLag = field(default_factory=WatchLag)
    #: This process's slot of ``slots`` load processes: its users take the tokens
    #: ``slot``, ``slot + slots``, ... so that workers share the accounts out.
    slot: int = 0
    slots: int = 1
    _next_user: int = 0
    _next_account: int = 0
    _next_workspace: int = 0
    _next_watcher: int = 0

    @property
    def replica_count(self) -> int:
        return len(self.settings.replicas)

    def replica_url(self, index: int | None) -> str:
        """The URL of replica ``index`` (wrapping), or the host when there is one."""
        replicas = self.settings.replicas
        if index is None or not replicas:
            return self.settings.host
        return replicas[index % len(replicas)]

    def placed(self, driver: int | None) -> int | None:
        """The replica a watcher (or watch socket) of a chat driven on ``driver`` goes to,
        by ``[chat] watcher_placement``."""
        n = self.replica_count
        if driver is None or n < 2:
            return driver
        placement = self.settings.scenario.chat.watcher_placement
        self._next_watcher += 1
        if placement == "same":
            return driver
        if placement == "any":
            return self._next_watcher % n
        return (driver + 1 + self._next_watcher % (n - 1)) % n

    def client(self, identity: Identity, on_request: RequestHook | None = None) -> ChatClient:
        """A user's REST client: its own token and connection, this process's TLS context."""
        settings = self.settings
        return ChatClient(
            self.replica_url(identity.replica),
            identity.token,
            settings.era,
            bypass_ratelimit=identity.owner and settings.scenario.target.bypass_ratelimit,
            on_request=on_request,
            replicas=settings.replicas,
        )

    def workspace(self) -> str | None:
        """The workspace the next chat is created in (round robin, dealt between load
        processes by their slots), or None without workspaces."""
        ids = self.settings.workspaces
        if not ids:
            return None
        index = (self.slot + self.slots * self._next_workspace) % len(ids)
        self._next_workspace += 1
        return ids[index]

    def identity(self, drives: bool = True) -> Identity:
        """A token, its organization and owner flag for a new user, spread round-robin over
        the tokens, and between load processes by their slots. A user that ``drives`` no
        chat of its own (a watcher borrows its chat's driver's login) takes no turn in the
        deal, so each driver of a run keeps its own account."""
        index = (self.slot + self.slots * self._next_account) % max(1, len(self.tokens))
        self._next_account += drives
        self._next_user += 1
        orgs, owners = self.settings.organizations, self.settings.owners
        n = self.replica_count
        return Identity(
            token=self.tokens[index] if self.tokens else "",
            organization=orgs[index] if index < len(orgs) else None,
            owner=owners[index] if index < len(owners) else False,
            # Users spread over the replicas in turn, whatever their tokens.
            replica=(self._next_user - 1) % n if n > 1 else None,
        )


def install(settings: RunSettings, tokens: list[str]) -> Runtime:
    """A fresh runtime for one run in this process (a local run's, the master's, a worker's)."""
    origin_ns = time.perf_counter_ns()
    epoch_now = time.time()
    recorder = Recorder(origin_ns=origin_ns, origin_epoch_s=epoch_now)
    recorder.turn_slos = dict(settings.turn_slos)
    seed = settings.seed if settings.seed is not None else int.from_bytes(os.urandom(4))
    return Runtime(settings, tokens, recorder, random.Random(seed ^ os.getpid()))


def attach(environment: Any, runtime: Runtime) -> None:
    """Hand ``runtime`` to everything of this Locust environment (users, shape, hooks)."""
    environment.chatload_runtime = runtime


def of(environment: Any) -> Runtime:
    """The runtime handed to this Locust environment."""
    runtime: Runtime | None = getattr(environment, "chatload_runtime", None)
    if runtime is None:
        raise RuntimeError("no chatload runtime on this Locust environment (use 'chatload run')")
    return runtime


#: Pretend each load process's CPU reads this percent (tests of generator-bound handling).
FAKE_CPU_ENV = "CHATLOAD_FAKE_CPU_PERCENT"


def start_health_sampler(runtime: Runtime) -> gevent.Greenlet:
    """Every 0.1 s how late the sampler woke (loop lag), the open streams and this process's
    resident memory; every second its CPU share."""
    recorder = runtime.recorder
    # A fake reading, to see what a run or a capacity search does with a generator-bound
    # process without starving one (chatload's own tests; never set it for a real run).
    fake_cpu = os.environ.get(FAKE_CPU_ENV)

    def sample() -> None:
        cpu_wall, cpu = time.perf_counter(), time.process_time()
        woke = cpu_wall
        while True:
            gevent.sleep(LAG_SAMPLE_S)
            now = time.perf_counter()
            recorder.loop_lag(max(0, int((now - woke - LAG_SAMPLE_S) * 1e9)))
            t = time.perf_counter_ns()
            recorder.active_streams(t, runtime.open_streams)
            recorder.memory_sample(t, resident_kb())
            woke = now
            if now - cpu_wall >= CPU_SAMPLE_S:
                now_cpu = time.process_time()
                share = 100.0 * (now_cpu - cpu) / (now - cpu_wall)
                recorder.cpu_sample(float(fake_cpu) if fake_cpu else share)
                cpu_wall, cpu = now, now_cpu

    return gevent.spawn(sample)
