"""The scenario's load shape as a Locust ``LoadTestShape``."""

from __future__ import annotations

from locust import LoadTestShape

from loadtest.core.profiles import users_at
from loadtest.locust import runtime


class ScenarioShape(LoadTestShape):
    """Users over time from ``[load] shape``; fixed-count watchers come on top."""

    def tick(self) -> tuple[int, float] | None:
        load = runtime.current().settings.scenario.load
        users = users_at(load, self.get_run_time())
        if users is None:
            return None
        watchers = users * runtime.current().settings.scenario.chat.watchers_per_chat
        return users + watchers, max(load.spawn_rate, 1.0)
