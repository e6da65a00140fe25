"""Where ``--prometheus`` and ``--web`` listen: parsed with the flag named, checked free."""

from __future__ import annotations

import socket

import pytest

from loadtest.runner.listen import check_free, parse_address


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:9100", ("127.0.0.1", 9100)),
        (":9100", ("0.0.0.0", 9100)),
        ("[::1]:80", ("[::1]", 80)),
        ("host:0", ("host", 0)),
    ],
)
def test_an_address_is_host_and_port(address: str, expected: tuple[str, int]) -> None:
    assert parse_address("--web", address, ":8089") == expected


@pytest.mark.parametrize("address", ["9100", "host:", "host:http", "host:65536", "host:-1"])
def test_a_bad_address_names_the_flag_and_an_example(address: str) -> None:
    with pytest.raises(ValueError, match=r"--prometheus .*expected HOST:PORT, e\.g\. :9100"):
        parse_address("--prometheus", address, ":9100")


def test_a_port_in_use_is_refused_and_a_free_one_passes() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            check_free("127.0.0.1", port)
    check_free("127.0.0.1", port)  # released: free again
