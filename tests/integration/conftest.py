"""Shared fixtures: the simulator as a real process on 127.0.0.1, and a stream reader.

One server per era lives for the whole session; ``era_a``/``era_b``/``era_d`` restore its
start-up config before each test, so tests can PATCH ``/__sim/config`` freely.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from loadtest.core.decode import PING, DecodeError, decode_frame
from tests.integration.browser import chromium_or_skip
from tests.integration.prometheus_server import ScrapedRun, scraped_run

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "chatload-test-owner-token-7f3a9c"
TIMEOUT = 10.0
#: Fast but not instant turns: parts arrive spread over a few frames.
FAST = ("--ttft", "5", "--part-gap", "1", "--parts-per-turn", "6", "--rate-limit", "-1")


class Sim:
    """A running ``chatload sim`` process."""

    def __init__(self, args: list[str], token: str | None = TOKEN) -> None:
        command = [sys.executable, "-m", "loadtest.cli", "sim", "--host", "127.0.0.1"]
        command += ["--port", "0", *args]
        if token:
            command += ["--token", token]
        self.token = token
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={k: v for k, v in os.environ.items() if k != "CHATLOAD_SIM_TOKEN"},
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 20)
        self.line = self.process.stdout.readline() if ready else ""
        if "listening on" not in self.line:
            self.process.kill()
            _, err = self.process.communicate(timeout=5)
            raise RuntimeError(f"sim did not start: {self.line!r} {err[-2000:]}")
        self.url = self.line.split()[4]
        self.ws_url = self.url.replace("http://", "ws://")
        self.http = httpx.Client(base_url=self.url, timeout=TIMEOUT)
        self.api = self.client(token) if token else self.http
        self.defaults = self.config()

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Coder-Session-Token": token} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=TIMEOUT)

    def config(self) -> dict[str, Any]:
        return self.http.get("/__sim/config").json()

    def patch(self, **changes: Any) -> dict[str, Any]:
        reply = self.http.patch("/__sim/config", json=changes)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def restore(self) -> None:
        self.patch(**self.defaults)

    def counts(self) -> dict[str, Any]:
        return self.http.get("/__sim/counts").json()

    def stream(self, path: str, token: str | None = None, **kwargs: Any) -> Stream:
        headers = {"Coder-Session-Token": token or self.token or ""}
        socket = connect(
            self.ws_url + path,
            additional_headers=headers,
            compression=None,
            open_timeout=TIMEOUT,
            close_timeout=1,
            legacy=True,
            **kwargs,
        )
        return Stream(socket)

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, float, str, str]:
        """Signal the process; (exit status, seconds it took, stdout rest, stderr)."""
        self.http.close()
        start = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            out, err = self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate(timeout=5)
        return self.process.returncode, time.monotonic() - start, out, err


class Stream:
    """A websocket on a chat stream: raw frames kept, events decoded by chatload's decoder."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.frames: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.pings = 0
        self.errors: list[DecodeError] = []

    def read(self, timeout: float = TIMEOUT) -> bool:
        """Read one frame; False once the socket is closed."""
        try:
            frame = self.socket.recv(timeout=timeout)
        except ConnectionClosed:
            return False
        assert isinstance(frame, str), "the server sends text frames only"
        decoded = decode_frame(frame)
        if decoded is PING:
            self.pings += 1
            return True
        self.frames.append(frame)
        if isinstance(decoded, DecodeError):
            self.errors.append(decoded)
        else:
            assert isinstance(decoded, list)
            self.events.extend(decoded)
        return True

    def until(self, done: Callable[[dict[str, Any]], bool], timeout: float = TIMEOUT) -> None:
        """Read until an event satisfies ``done`` (checking those already read first)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if done(event):
                    return
            seen = len(self.events)
            left = deadline - time.monotonic()
            assert left > 0, f"timed out; events: {[e['type'] for e in self.events]}"
            assert self.read(left), f"stream closed; events: {[e['type'] for e in self.events]}"

    def until_status(self, *statuses: str, count: int = 1) -> None:
        def done(event: dict[str, Any]) -> bool:
            return len([s for s in self.statuses() if s in statuses]) >= count

        self.until(done)

    def settle(self, quiet: float = 0.1) -> None:
        """Read until nothing arrives for ``quiet`` seconds (e.g. the rest of a snapshot)."""
        with contextlib.suppress(TimeoutError):
            while self.read(quiet):
                pass

    def drain_until_closed(self, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while self.read(max(0.01, deadline - time.monotonic())):
            assert time.monotonic() < deadline, "stream stayed open"

    def statuses(self) -> list[str]:
        return [e["status"]["status"] for e in self.events if e["type"] == "status"]

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def close(self) -> None:
        self.socket.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def text(message: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": message}]}


ORGANIZATION = "0fa1c0de-c0de-4c0d-8c0d-000000000001"


def create_body(era: str, message: str = "hello") -> dict[str, Any]:
    """A CreateChatRequest; eras b and d require the organization."""
    body = text(message)
    return body if era == "a" else {**body, "organization_id": ORGANIZATION}


class EraSim(Sim):
    """A session server with era-specific paths."""

    def __init__(self, era: str, args: list[str]) -> None:
        super().__init__(["--era", era, *args])
        self.era = era
        self.base = "/api/experimental/chats" if era in ("a", "b") else "/api/v2/chats"

    def create_chat(self, message: str = "hello") -> dict[str, Any]:
        reply = self.api.post(self.base, json=create_body(self.era, message))
        assert reply.status_code == 201, reply.text
        return reply.json()

    def post(self, chat_id: str, message: str = "more") -> httpx.Response:
        return self.api.post(f"{self.base}/{chat_id}/messages", json=text(message))

    def open(self, chat_id: str, query: str = "") -> Stream:
        return self.stream(f"{self.base}/{chat_id}/stream{query}")

    def wait_idle(self, chat_id: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """Poll until the chat is no longer pending/running; its Chat."""
        deadline = time.monotonic() + timeout
        while True:
            body = self.api.get(f"{self.base}/{chat_id}").json()
            chat = body.get("chat", body)
            if chat["status"] not in ("pending", "running", "interrupting"):
                return chat
            assert time.monotonic() < deadline, f"chat stayed {chat['status']}"
            time.sleep(0.01)


def _session_sim(era: str) -> Iterator[EraSim]:
    sim = EraSim(era, list(FAST))
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def sim_a_server() -> Iterator[EraSim]:
    yield from _session_sim("a")


@pytest.fixture(scope="session")
def sim_b_server() -> Iterator[EraSim]:
    yield from _session_sim("b")


@pytest.fixture(scope="session")
def sim_d_server() -> Iterator[EraSim]:
    yield from _session_sim("d")


@pytest.fixture
def era_a(sim_a_server: EraSim) -> Iterator[EraSim]:
    sim_a_server.restore()
    yield sim_a_server


@pytest.fixture
def era_b(sim_b_server: EraSim) -> Iterator[EraSim]:
    sim_b_server.restore()
    yield sim_b_server


@pytest.fixture
def era_d(sim_d_server: EraSim) -> Iterator[EraSim]:
    sim_d_server.restore()
    yield sim_d_server


@pytest.fixture(params=["a", "b", "d"])
def any_era(request: pytest.FixtureRequest) -> Iterator[EraSim]:
    sim: EraSim = request.getfixturevalue(f"sim_{request.param}_server")
    sim.restore()
    yield sim


@pytest.fixture(scope="session")
def chromium() -> str:
    """Headless Chromium's path (the browser tests skip where it cannot be had)."""
    return chromium_or_skip()


@pytest.fixture(scope="session")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScrapedRun]:
    """One ``chatload run --prometheus`` against the simulator, both scraped by a private
    Prometheus (skips where Debian's ``prometheus`` is not installed)."""
    yield from scraped_run(tmp_path_factory.mktemp("scraped"))
