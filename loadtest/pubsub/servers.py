"""Private PostgreSQL and NATS servers on 127.0.0.1, each in its own data directory, stopped by handle.

The binaries are Debian's (``postgresql``, ``nats-server``; the Makefile installs them).
PostgreSQL's ``initdb`` and server refuse to run as root, so as root they run as the
``postgres`` user Debian's package makes (or ``nobody``), owning only their own directory.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from loadtest.child import spawn

#: How long a server may take to accept connections before it counts as failed.
START_TIMEOUT_S = 60.0
INSTALL_HINT = "make test installs it (apt-get install {package})"


class ServerError(RuntimeError):
    """A server could not start: missing, refused, or died; the message says which."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _postgres_bin(name: str) -> Path:
    """Debian keeps PostgreSQL's server programs off PATH, in /usr/lib/postgresql/<v>/bin."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if versions:
        return versions[-1]
    found = shutil.which(name)
    if found is None:
        raise ServerError(
            f"PostgreSQL's {name} is not installed: " + INSTALL_HINT.format(package="postgresql")
        )
    return Path(found)


def _nats_bin() -> Path:
    found = shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin:/usr/bin")
    if found is None:
        raise ServerError(
            "nats-server is not installed: " + INSTALL_HINT.format(package="nats-server")
        )
    return Path(found)


def _unprivileged() -> pwd.struct_passwd | None:
    """The user PostgreSQL runs as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise ServerError(
        "running as root with neither a 'postgres' nor a 'nobody' user to run PostgreSQL as"
    )


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"{what} exited with {process.returncode}: {_tail(log)}")
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise ServerError(
        f"{what} did not listen on 127.0.0.1:{port} within {START_TIMEOUT_S:.0f} s: {_tail(log)}"
    )


def _tail(log: Path) -> str:
    try:
        return (
            " | ".join(log.read_text(errors="replace").strip().splitlines()[-5:]) or "(no output)"
        )
    except OSError:
        return "(no log)"


def stop_process(process: subprocess.Popen[bytes] | None, sig: signal.Signals) -> None:
    """Ask a server process to stop with ``sig``; kill it if it has not within 15 s."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


class PrivateServer:
    """A server of ours on 127.0.0.1 in a private directory: start on enter (or ``start()``),
    stop and delete the directory on exit (or ``stop()``)."""

    url: str

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.root = Path(tempfile.mkdtemp(prefix=f"chatload-{type(self).__name__.lower()}-"))
        self.port = free_port()

    def start(self) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class PostgresServer(PrivateServer):
    """A throwaway PostgreSQL cluster: trust auth on 127.0.0.1 only, durability off (it is a test)."""

    def __init__(self, max_connections: int = 300) -> None:
        super().__init__()
        self.max_connections = max_connections
        self.url = f"postgresql://chatload@127.0.0.1:{self.port}/postgres"

    def start(self) -> str:
        user = _unprivileged()
        data, sockets, log = self.root / "data", self.root / "sockets", self.root / "postgres.log"
        for path in (data, sockets):
            path.mkdir(mode=0o700)
        log.touch()
        self.root.chmod(0o755)  # the server's user must reach its own directories
        uid, gid = (None, None) if user is None else (user.pw_uid, user.pw_gid)
        groups: list[int] | None = None if user is None else []
        if user is not None:
            for path in (data, sockets, log):
                os.chown(path, user.pw_uid, user.pw_gid)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C",
            "HOME": str(self.root),
        }
        initdb = [
            str(_postgres_bin("initdb")),
            "-D", str(data), "-U", "chatload", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C",
        ]  # fmt: skip
        done = subprocess.run(
            initdb, capture_output=True, cwd=self.root, env=env, timeout=120, check=False,
            user=uid, group=gid, extra_groups=groups,
        )  # fmt: skip
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()[-3:]
            raise ServerError(f"initdb failed ({done.returncode}): {' | '.join(tail)}")
        server = [
            str(_postgres_bin("postgres")),
            "-D", str(data), "-h", "127.0.0.1", "-p", str(self.port), "-k", str(sockets),
            "-c", f"max_connections={self.max_connections}",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
        ]  # fmt: skip
        with log.open("ab") as out:
            self.process = spawn(
                server, stdout=out, stderr=subprocess.STDOUT, cwd=self.root, env=env,
                 user=uid, group=gid, extra_groups=groups,
            )  # fmt: skip
        _wait_for_port(self.port, self.process, log, "PostgreSQL")
        self._wait_ready(log)
        return self.url

    def _wait_ready(self, log: Path) -> None:
        """Listening is not accepting: the server may still be starting up."""
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=5) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                assert self.process is not None
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise ServerError(
                        f"PostgreSQL never accepted a connection: {_tail(log)}"
                    ) from None
                time.sleep(0.1)

    def stop(self) -> None:
        stop_process(self.process, signal.SIGINT)  # "fast" shutdown: no waiting for clients
        super().stop()


class NatsServer(PrivateServer):
    """A single core-NATS server (no JetStream: Coder's chat pubsub needs none)."""

    def __init__(self) -> None:
        super().__init__()
        self.url = f"nats://127.0.0.1:{self.port}"

    def start(self) -> str:
        log = self.root / "nats.log"
        command = [str(_nats_bin()), "-a", "127.0.0.1", "-p", str(self.port), "-l", str(log)]
        self.process = spawn(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.root,

        )  # fmt: skip
        _wait_for_port(self.port, self.process, log, "nats-server")
        return self.url

    def stop(self) -> None:
        stop_process(self.process, signal.SIGTERM)
        super().stop()
