"""The scenario's closed-loop profile as a Locust ``LoadTestShape``."""

from __future__ import annotations

from locust import LoadTestShape

from loadtest.core.profiles import ClosedProfile, Storm
from loadtest.locust import runtime, storm


class ScenarioShape(LoadTestShape):
    """Users over time from the profile; fixed-count watchers come on top. A storm's users
    all start at once (its barrier releases them together anyway) and its run ends when every
    chat has, as Coder's scaletest does."""

    def tick(self) -> tuple[int, float] | None:
        assert self.runner is not None
        scenario = runtime.of(self.runner.environment).settings.scenario
        load = scenario.load
        t = self.get_run_time()
        if t >= load.run_time or not isinstance(load.profile, ClosedProfile):
            return None
        users = load.profile.users_at(t)
        watchers = users * scenario.chat.watchers_per_chat
        if isinstance(load.profile, Storm):
            if storm.of(self.runner.environment).finished:
                return None
            return users + watchers, float(max(users + watchers, 1))
        return users + watchers, max(load.spawn_rate, 1.0)
