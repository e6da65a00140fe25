"""A run's target: the deployment ``--host`` names, or the simulator started for it, found
usable by the preflight (era, tokens, chats on, workspaces) before the load begins.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
import sys
from collections.abc import Callable
from typing import Any

from loadtest.client.preflight import (
    TargetError,
    TargetInfo,
    find_workspaces,
    inspect_replicas,
    split_hosts,
)
from loadtest.runner import processes
from loadtest.runner.accounts import driving_users
from loadtest.runner.plan import EXIT_INCOMPLETE, EXIT_UNREACHABLE, EXIT_USAGE
from loadtest.scenario import Scenario


def against_target(
    command: str,
    scenario: Scenario,
    host: str | None,
    tokens: list[str],
    body: Callable[[TargetInfo, list[str]], int],
    users: int | None = None,
) -> int:
    """``body`` against ``host``, or against the embedded simulator (started for it and
    stopped after) when there is none, once the preflight has found the target usable.
    The simulator's users log in as ``[sim] accounts`` says, for ``users`` simulated users
    at most (default: the scenario's)."""
    sim: processes.SimProcess | None = None
    try:
        if not host:
            token = secrets.token_urlsafe(24)
            sim = processes.SimProcess.start(
                scenario.sim.era, token, _sim_config(scenario, users or driving_users(scenario))
            )
            accounts = scenario.sim.account_count(users or driving_users(scenario))
            host, tokens = sim.url, (sim.accounts(accounts) if accounts > 1 else [token])
        try:
            target = inspect_replicas(split_hosts(host), tokens, scenario.target.era)
            target = _with_workspaces(target, tokens[0], scenario, users)
        except TargetError as exc:
            print(f"chatload {command}: {exc}", file=sys.stderr)
            return EXIT_UNREACHABLE
        return body(target, tokens)
    except processes.ProcessError as exc:
        print(f"chatload {command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        # Before the load started (while the simulator or the preflight ran): nothing to report.
        print(
            f"chatload {command}: interrupted before the load started; no report", file=sys.stderr
        )
        return EXIT_INCOMPLETE
    finally:
        if sim is not None:
            sim.stop()


def _sim_config(scenario: Scenario, users: int) -> dict[str, Any]:
    """The embedded simulator's settings: the scenario's, plus Coder's ``scaletest-``
    workspaces when the scenario wants workspaces the simulator was not told to make (one
    per ``chats_per_workspace`` users)."""
    config = dict(scenario.sim.config)
    target = scenario.target
    if target.workspaces and "workspaces" not in config:
        config["workspaces"] = max(1, math.ceil(users / (target.chats_per_workspace or 1)))
    return config


def _with_workspaces(
    target: TargetInfo, token: str, scenario: Scenario, users: int | None
) -> TargetInfo:
    """The target with the workspaces ``[target] workspaces`` names (a TargetError when none
    can take chats, or too few for ``chats_per_workspace``)."""
    prefix = scenario.target.workspaces
    if not prefix:
        return target
    ids = find_workspaces(target.url, token, prefix)
    per = scenario.target.chats_per_workspace
    wanted = users or driving_users(scenario)
    if per is not None and wanted > len(ids) * per:
        raise TargetError(
            f"{wanted} users need {math.ceil(wanted / per)} workspaces named {prefix!r}* at "
            f"{per} chats each (chats_per_workspace), but {len(ids)} have a connected agent"
        )
    return dataclasses.replace(target, workspaces=ids)
