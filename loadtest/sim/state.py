"""The simulator's state: one simulated deployment's accounts, catalog, chats and streams.

Routes (``api_*``, ``stream``, ``admin``, ``firehose``) import it; it imports none of them.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime

from starlette.requests import Request

from loadtest.protocol.eras import PATHS, Era
from loadtest.protocol.models import ErrorKind
from loadtest.sim.accounts import OWNER_ID, Accounts, User
from loadtest.sim.auth import Auth, RateLimiter
from loadtest.sim.catalog import Catalog
from loadtest.sim.chat_state import ChatState
from loadtest.sim.chats import ChatStore
from loadtest.sim.cluster.config import ReplicaSettings
from loadtest.sim.cluster.replica import Replica, TappedHub
from loadtest.sim.config import SimConfig
from loadtest.sim.errors import VALIDATION_FAILED, ApiError
from loadtest.sim.hub import Counters, Hub
from loadtest.sim.metrics import DaemonMetrics, Live
from loadtest.sim.player import Player
from loadtest.sim.watch_hub import WatchHub
from loadtest.sim.workspaces import Workspace, made


def _now() -> datetime:
    return datetime.now(UTC)


class Sim:
    """Everything one simulated deployment holds: accounts, catalog, chats, streams."""

    def __init__(
        self, era: Era, config: SimConfig, token: str | None, *, default_model: bool = True
    ) -> None:
        self.era = era
        self.paths = PATHS[era]
        self.config = self._checked(config)
        self.clock = _now
        self.external_url = ""
        self.accounts = Accounts(_now, token)
        self.catalog = Catalog(_now, default_model)
        self.store = ChatStore(era, _now)
        self.hub = Hub()
        self.watch = WatchHub(era)
        self.store.on_change = self.watch.publish
        self.counters = Counters()
        self.metrics = DaemonMetrics()
        self.metrics.live = self._live
        self.rng = random.Random(config.seed)
        self.limiter = RateLimiter(lambda: self.config.rate_limit_per_minute)
        self.auth = Auth(self.accounts, self.limiter)
        self.player = Player(self)
        #: This process as one replica of a cluster (``chatload sim --replicas``), if so.
        self.replica: Replica | None = None
        self._workspaces: list[Workspace] = []

    def workspaces(self) -> list[Workspace]:
        """``--workspaces N``: ``scaletest-0`` … owned by the pre-made owner (made once per N)."""
        count = self.config.workspaces
        if len(self._workspaces) != count:
            self._workspaces = made(count, OWNER_ID, "admin")
        return self._workspaces

    def join_cluster(self, settings: ReplicaSettings) -> Replica:
        """Become one replica: what this hub publishes for our chats also goes to the
        cluster; the replica starts (database, pubsub) once the server serves."""
        hub = TappedHub(self.store.chats)
        self.hub = hub
        replica = self.replica = hub.replica = Replica(self, settings)
        watch = self.watch.publish

        def changed(chat: ChatState, kind: str) -> None:
            watch(chat, kind)
            replica.changed(chat, kind)

        self.store.on_change = changed
        self.store.on_parts = replica.parts.add
        self.watch.broadcast = replica.watch_event
        self.watch.on_owner = replica.watching
        return replica

    def _live(self) -> Live:
        """The gauges and, as a replica, the pubsub counts, when ``/metrics`` is scraped."""
        pools = self.player.agents()
        active = sum(running for running, _ in pools.values())
        queued = sum(waiting for _, waiting in pools.values())
        pubsub = None
        if self.replica is not None and self.replica.pubsub is not None:
            tally = self.replica.tally
            pubsub = (self.replica.pubsub.kind, tally.notifies_published, tally.notifies_colossal)
        return Live(agents_active=active, agents_queued=queued, by_pool=pools, pubsub=pubsub)

    def reconfigure(self, config: SimConfig) -> None:
        """Adopt a new config; a new seed restarts the random source, limits start afresh."""
        self._checked(config)
        if config.seed is not None and config.seed != self.config.seed:
            self.rng.seed(config.seed)
        self.config = config
        self.limiter.reset()

    def _checked(self, config: SimConfig) -> SimConfig:
        """What this era cannot do: era D has no ``startup_timeout`` (section 8.6)."""
        if self.era is Era.D and config.error_kind == ErrorKind.STARTUP_TIMEOUT:
            problem = ("error_kind", "startup_timeout no longer exists in era d (section 8.6)")
            raise ApiError(400, VALIDATION_FAILED, validations=[problem])
        return config

    # ------------------------------------------------------------ helpers for handlers

    def chat_user(
        self,
        headers: Mapping[str, str],
        cookies: Mapping[str, str],
        query: Mapping[str, str],
        path: str = "",
    ) -> User:
        """An authenticated caller of a chats route, behind the ``agents`` experiment."""
        user = self.auth.user(headers, cookies, query, path)
        if self.era is not Era.D and not self.config.agents_experiment:
            raise ApiError(403, "Chats functionality requires enabling the 'agents' experiment.")
        return user

    def request_user(self, request: Request, *, chats: bool = False) -> User:
        fetch = self.chat_user if chats else self.auth.user
        return fetch(request.headers, request.cookies, request.query_params, request.url.path)
