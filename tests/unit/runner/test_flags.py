"""The shared argparse types: a bad value is a usage error naming the flag and the value."""

from __future__ import annotations

import argparse

import pytest

from loadtest.runner.flags import at_least, duration, positive


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(exit_on_error=False)
    parser.add_argument("--users", type=at_least(1))
    parser.add_argument("--rate", type=positive)
    parser.add_argument("--for", dest="run_time", type=duration(positive=True))
    parser.add_argument("--delay", type=duration(positive=False))
    return parser


def test_good_values_parse() -> None:
    args = parser().parse_args(["--users", "3", "--rate", "0.5", "--for", "1h30m", "--delay", "0"])
    assert (args.users, args.rate, args.run_time, args.delay) == (3, 0.5, 5400.0, 0.0)
    assert parser().parse_args(["--for", "2m"]).run_time == 120.0


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--users", "0"], "must be at least 1, not 0"),
        (["--users", "two"], "'two' is not a whole number"),
        (["--users", "1.5"], "'1.5' is not a whole number"),
        (["--rate", "0"], "must be more than 0, not 0"),
        (["--rate", "-1"], "must be more than 0"),
        (["--rate", "fast"], "'fast' is not a number"),
        (["--rate", "nan"], "must be more than 0, not nan"),
        (["--for", "0s"], "must be longer than 0, not '0s'"),
        (["--for", "soon"], "soon"),
    ],
)
def test_a_bad_value_names_the_flag_and_why(argv: list[str], problem: str) -> None:
    with pytest.raises(argparse.ArgumentError) as caught:
        parser().parse_args(argv)
    assert argv[0] in str(caught.value) and problem in str(caught.value)
