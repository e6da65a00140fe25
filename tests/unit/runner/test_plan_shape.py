"""``--shape`` and ``--turn-start-delay``: a storm from flags over any scenario file, and the
mistakes found before anything runs (exit 2), naming the flag or key."""

from __future__ import annotations

import argparse

import pytest

from loadtest.core.profiles import Storm
from loadtest.runner.plan import UsageError, plan
from loadtest.runner.run_command import configure


def args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure(parser)
    return parser.parse_args(list(argv))


def test_flags_make_any_scenario_a_storm_as_coders_scaletest_flags_do() -> None:
    scenario, *_ = plan(
        args("--shape", "storm", "-u", "30", "--turns", "10", "--turn-start-delay", "5s")
    )
    assert scenario.load.profile == Storm(users=30, turn_start_delay=5.0)
    assert scenario.chat.turns == 10


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (("--shape", "storm", "--arrival-rate", "5"), "--arrival-rate runs the open loop"),
        (("--turn-start-delay", "2s"), "turn_start_delay is not a setting of the steady shape"),
    ],
)
def test_a_storm_flag_out_of_place_is_a_usage_error(argv: tuple[str, ...], problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        plan(args(*argv))
