"""A shared account's watch fan-out is named, with its size and the fix; a handful is fine."""

from __future__ import annotations

from loadtest.runner.accounts import HANDFUL, shared_account_warning
from loadtest.scenario import Scenario


def scenario(users: int, sockets: int) -> Scenario:
    return Scenario.model_validate(
        {"load": {"users": users}, "chat": {"watch_sockets_per_user": sockets}}
    )


def test_many_users_on_one_account_with_watch_sockets_are_warned_of_with_the_fix() -> None:
    warning = shared_account_warning(scenario(300, 2), accounts=1)
    assert warning is not None
    assert "300 users share 1 account" in warning
    assert "reaches 600 sockets" in warning  # 300 users x 2 sockets hear every change
    assert "chatload setup --users 300" in warning


def test_a_handful_per_account_or_no_watch_socket_is_no_warning() -> None:
    assert shared_account_warning(scenario(HANDFUL * 10, 1), accounts=10) is None
    assert shared_account_warning(scenario(300, 0), accounts=1) is None
    assert shared_account_warning(scenario(HANDFUL * 10 + 1, 1), accounts=10) is not None


def test_the_simulator_gives_each_user_an_account_unless_told_otherwise() -> None:
    assert Scenario().sim.account_count(300) == 300
    shared = Scenario.model_validate({"sim": {"accounts": "shared"}})
    assert shared.sim.account_count(300) == 1
    team = Scenario.model_validate({"sim": {"accounts": 10}})
    assert team.sim.account_count(300) == 10 and team.sim.account_count(4) == 4
