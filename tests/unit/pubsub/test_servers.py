"""The private servers' parts: a free port, a process stopped by signal (or killed), a
directory that goes with the server even when it fails to start."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import pytest

from loadtest.pubsub.servers import PrivateServer, free_port, stop_process


def test_a_free_port_can_be_bound() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", free_port()))


def test_a_process_stops_on_its_signal_and_a_stopped_one_is_left_alone() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    stop_process(process, signal.SIGTERM)
    assert process.returncode == -signal.SIGTERM
    stop_process(process, signal.SIGTERM)  # already gone: nothing to do
    stop_process(None, signal.SIGTERM)


class Failing(PrivateServer):
    def start(self) -> str:
        (self.root / "data").write_text("half started")
        raise RuntimeError("no binary")


def test_a_server_that_fails_to_start_leaves_no_directory() -> None:
    server = Failing()
    assert server.root.is_dir()
    with pytest.raises(RuntimeError, match="no binary"), server:
        raise AssertionError("entered a server that did not start")
    assert not server.root.exists()
