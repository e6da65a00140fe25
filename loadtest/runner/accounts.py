"""How a run's simulated users sit on accounts, and the watch fan-out a shared one causes."""

from __future__ import annotations

import math

from loadtest.scenario import Scenario

#: More users than this on one account is no longer a person with a few tabs: warn.
HANDFUL = 5


def driving_users(scenario: Scenario) -> int:
    """Users that drive chats of their own (each takes an account in the deal)."""
    load = scenario.load
    return load.users if load.users is not None else max(1, load.workers)


def shared_account_warning(scenario: Scenario, accounts: int) -> str | None:
    """What more than a handful of users per account does to ``/chats/watch`` traffic, and
    the fix; None when each account has a handful or no user holds a watch socket."""
    users = driving_users(scenario)
    per_account = math.ceil(users / max(1, accounts))
    sockets = scenario.chat.watch_sockets_per_user
    if per_account <= HANDFUL or not sockets:
        return None
    return (
        f"{users} users share {accounts} account{'s' if accounts != 1 else ''} ({per_account} per "
        f"account) with {sockets} watch socket{'s' if sockets != 1 else ''} each: Coder's "
        "/chats/watch is per account, so every status change reaches "
        f"{per_account * sockets} sockets and watch traffic grows with users squared "
        f"({per_account}x what {users} people would cause). Give each user an account: "
        f"'chatload setup --users {users}' then '--setup FILE' (against the simulator, "
        '[sim] accounts = "per_user", the default)'
    )
