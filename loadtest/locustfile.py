"""The locustfile: ``chatload run`` uses it, and so can ``locust -f loadtest/locustfile.py``.

Run through ``chatload run``, the settings come from the environment it sets. Run by hand,
``--host`` names the deployment, ``CODER_SESSION_TOKEN`` the token, and
``--chatload-scenario`` a scenario file; the era is detected from the deployment.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from locust import events

from loadtest.locust import distributed, runtime
from loadtest.locust.collector import Collector
from loadtest.locust.users import ChatUser  # noqa: F401  (discovered by Locust)

# Locust discovers every User class named here, and spawns by weight those without a fixed
# count: so name only the classes this run uses (plain 'locust -f': ChatUser alone).
_run = runtime.from_env()
if _run is not None and _run.settings.scenario.load.mode == "open":
    from loadtest.locust.users import OpenLoopUser  # noqa: F401
elif _run is not None and _run.settings.scenario.chat.watchers_per_chat:
    from loadtest.locust.users import StreamWatcher  # noqa: F401

# One log line per request would cost more than the request's measurement.
logging.getLogger("httpx").setLevel(logging.WARNING)


@events.init_command_line_parser.add_listener
def _options(parser: Any, **_: Any) -> None:
    parser.add_argument(
        "--chatload-scenario", default="", help="chatload scenario file (TOML) for its users"
    )


@events.init.add_listener
def _init(environment: Any, **_: Any) -> None:
    """A worker of 'chatload run', or plain 'locust -f': hand the users their runtime."""
    rt = _run if _run is not None else runtime.install(*_standalone_settings(environment))
    runtime.attach(environment, rt)
    distributed.install(environment, rt, Collector())


def _standalone_settings(environment: Any) -> tuple[runtime.RunSettings, list[str]]:
    """Settings for a plain ``locust -f`` run, from Locust's options and the environment."""
    from loadtest.client.preflight import inspect_target
    from loadtest.scenario import load_scenario

    options = environment.parsed_options
    path = getattr(options, "chatload_scenario", "") if options else ""
    scenario = load_scenario(Path(path) if path else None)
    host = environment.host or os.environ.get("CODER_URL") or ""
    token = os.environ.get("CODER_SESSION_TOKEN", "")
    target = inspect_target(host, [token], scenario.target.era)
    return runtime.RunSettings.for_target(scenario, target), [token]
