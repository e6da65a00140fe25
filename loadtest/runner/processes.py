"""The processes a run starts: the embedded simulator and Locust workers.

Each starts in a session (and so a process group) of its own: a Ctrl-C in the terminal
signals only chatload, which drains the turns in flight and then stops its children itself.
Were they in the terminal's group, the simulator and the workers would die first and the
drained turns would fail against a dead target. Each child also asks the kernel for SIGTERM
when chatload dies, so a killed chatload leaves nothing running.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import IO, Any

import httpx

from loadtest.child import spawn

LISTENING = re.compile(r"listening on (http://\S+)")
START_TIMEOUT_S = 30.0


class ProcessError(Exception):
    """A helper process could not be started or died."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _read_url(proc: subprocess.Popen[str], what: str) -> str:
    """The URL from the process's 'listening on' line, within the start timeout."""
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    stdout: IO[str] = proc.stdout
    while time.monotonic() < deadline:
        line = stdout.readline()
        if not line:
            if proc.poll() is not None:
                raise ProcessError(f"{what} exited with code {proc.returncode} before listening")
            continue
        match = LISTENING.search(line)
        if match:
            return match.group(1)
    proc.kill()
    raise ProcessError(f"{what} did not start listening within {START_TIMEOUT_S:.0f} s")


def _terminate(proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=grace)


@dataclass
class SimProcess:
    """``chatload sim`` on a free 127.0.0.1 port, for a run without --host."""

    proc: subprocess.Popen[str]
    url: str

    @classmethod
    def start(
        cls,
        era: str,
        token: str,
        config: dict[str, Any],
        quiet: bool = False,
        host: str = "127.0.0.1",
    ) -> SimProcess:
        """Start it; ``quiet`` drops its log (a benchmark's readers leave mid-stream);
        ``host``: the address it listens on."""
        env = {**os.environ, "CHATLOAD_SIM_TOKEN": token}
        proc = spawn(
            [
                sys.executable,
                "-m",
                "loadtest.cli",
                "sim",
                "--host",
                host,
                "--port",
                "0",
                "--era",
                era,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if quiet else None,
            text=True,
            env=env,
        )
        sim = cls(proc, _read_url(proc, "the simulator"))
        if config:
            response = httpx.patch(f"{sim.url}/__sim/config", json=config, timeout=10)
            if response.status_code >= 400:
                sim.stop()
                raise ProcessError(f"the simulator refused [sim] config: {response.text[:300]}")
        return sim

    def accounts(self, count: int) -> list[str]:
        """Session tokens of ``count`` new accounts, one per simulated user."""
        response = httpx.post(f"{self.url}/__sim/accounts", json={"count": count}, timeout=60)
        if response.status_code != 201:
            raise ProcessError(f"the simulator made no accounts: {response.text[:300]}")
        tokens: list[str] = response.json()["tokens"]
        return tokens

    def stop(self) -> None:
        _terminate(self.proc)


@dataclass
class WorkerProcess:
    """One ``chatload worker`` on this machine, joining the master at 127.0.0.1:``master_port``
    as a worker on another machine would: the run's settings and tokens reach it from the
    master, not through its command line or environment."""

    proc: subprocess.Popen[bytes]

    @classmethod
    def start(cls, master_port: int) -> WorkerProcess:
        command = [
            sys.executable,
            "-m",
            "loadtest.cli",
            "worker",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            str(master_port),
            "--quiet",
        ]
        return cls(spawn(command, stdout=subprocess.DEVNULL))

    @property
    def exited(self) -> bool:
        return self.proc.poll() is not None

    def describe(self) -> str:
        code = self.proc.poll()
        state = "running" if code is None else f"exited with code {code}"
        return f"worker process {self.proc.pid} ({state})"

    def stop(self) -> None:
        _terminate(self.proc)
