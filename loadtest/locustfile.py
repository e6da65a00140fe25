"""The locustfile, for plain ``locust -f loadtest/locustfile.py``: chatload's users in Locust's
own command line (``chatload run`` and ``chatload worker`` build their Locust environments
themselves).

``--host`` names the deployment, ``CODER_SESSION_TOKEN`` the token, and
``--chatload-scenario`` a scenario file; the era is detected from the deployment. Only the
closed-loop ``ChatUser`` is offered: Locust spawns every class it finds by weight.
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

# One log line per request would cost more than the request's measurement.
logging.getLogger("httpx").setLevel(logging.WARNING)


@events.init_command_line_parser.add_listener
def _options(parser: Any, **_: Any) -> None:
    parser.add_argument(
        "--chatload-scenario", default="", help="chatload scenario file (TOML) for its users"
    )


@events.init.add_listener
def _init(environment: Any, **_: Any) -> None:
    """Hand the users their runtime."""
    rt = runtime.install(*_standalone_settings(environment))
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
