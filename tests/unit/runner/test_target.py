"""A run's target: the deployment ``--host`` names, or an embedded simulator started and
stopped for it, found usable by the preflight before ``body`` runs."""

from __future__ import annotations

import socket

import pytest

from loadtest.client.preflight import TargetInfo
from loadtest.runner.plan import EXIT_UNREACHABLE
from loadtest.runner.target import against_target
from loadtest.scenario import Scenario


def refused(target: TargetInfo, tokens: list[str]) -> int:
    raise AssertionError("body ran against an unusable target")


def test_an_unreachable_host_is_exit_unreachable_before_the_body(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = against_target("run", Scenario(), f"http://127.0.0.1:{port}", ["tok"], refused)
    assert code == EXIT_UNREACHABLE
    assert capsys.readouterr().err.startswith("chatload run: ")


def test_without_a_host_a_simulator_serves_each_user_an_account_and_its_workspaces() -> None:
    scenario = Scenario.model_validate(
        {
            "load": {"users": 5},
            "target": {"workspaces": "scaletest-", "chats_per_workspace": 2},
        }
    )
    seen: list[tuple[TargetInfo, list[str]]] = []

    def body(target: TargetInfo, tokens: list[str]) -> int:
        seen.append((target, tokens))
        return 7

    assert against_target("run", scenario, None, [], body) == 7
    ((target, tokens),) = seen
    assert target.url.startswith("http://127.0.0.1:")
    assert len(tokens) == len(set(tokens)) == 5, "one account per user"
    assert len(target.workspaces) == 3, "5 users at 2 chats per workspace"
    host, port = target.url.removeprefix("http://").split(":")
    with pytest.raises(OSError):  # the simulator went with the run
        socket.create_connection((host, int(port)), timeout=5).close()
