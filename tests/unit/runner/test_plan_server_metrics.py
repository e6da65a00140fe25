"""``--server-metrics``'s usage errors are found before anything runs (exit 2)."""

from __future__ import annotations

import argparse

import pytest

from loadtest.client.server_metrics import endpoints
from loadtest.runner.plan import UsageError, plan
from loadtest.runner.run_command import configure


def args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (("--server-metrics", "coder:2112/metrics"), "not a URL with a scheme"),
        (("--server-metrics", "sim", "--host", "http://coder", "--token", "t"), "embedded"),
    ],
)
def test_a_bad_server_metrics_value_is_a_usage_error(argv: tuple[str, ...], problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        plan(args(*argv))


def test_sim_names_the_embedded_simulator_and_urls_pass() -> None:
    _, _, host, _ = plan(args("--server-metrics", "sim"))
    assert host is None, "'sim' scrapes the simulator the run embeds"
    parsed = args("--server-metrics", "http://a:2112/metrics,https://b:2112/metrics")
    _, _, host, _ = plan(parsed)
    assert host is None
    assert endpoints(parsed.server_metrics, "http://sim") == [
        "http://a:2112/metrics",
        "https://b:2112/metrics",
    ]
