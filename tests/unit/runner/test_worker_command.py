"""``chatload worker``: the address the master sees it at."""

from __future__ import annotations

import argparse
import socket

from loadtest.runner.worker_command import configure, local_address


def test_the_address_on_the_way_to_the_master() -> None:
    assert local_address("127.0.0.1", 5557) == "127.0.0.1"
    # No route (an unresolvable name): the host name, still something to show.
    assert local_address("no-such-host.invalid", 5557) == socket.gethostname()


def test_the_master_is_named_by_flags() -> None:
    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args(["--master-host", "10.0.0.5", "--master-port", "6000", "--quiet"])
    assert (args.master_host, args.master_port, args.quiet) == ("10.0.0.5", 6000, True)
