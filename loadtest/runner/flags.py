"""Argparse value types the subcommands share: whole numbers, positive numbers, durations."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from loadtest.config import parse_duration


def at_least(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``low`` (argparse then blames the flag)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {value}")
        return value

    return parse


def positive(text: str) -> float:
    """An argparse type: a number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def duration(positive: bool) -> Callable[[str], float]:
    """An argparse type: a duration (``30``, ``30s``, ``2m``, ``1h30m``) in seconds; above 0
    when ``positive``."""

    def parse(text: str) -> float:
        try:
            seconds = parse_duration(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if positive and seconds <= 0:
            raise argparse.ArgumentTypeError(f"must be longer than 0, not {text!r}")
        return seconds

    return parse
