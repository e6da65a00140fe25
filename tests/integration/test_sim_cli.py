"""``chatload sim`` as a process: help, start-up line, config sources, clean shutdown."""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from loadtest.sim.command import configure
from tests.integration.conftest import ROOT, Sim, create_body

#: The tuning flags, generated from the config's fields: their names stay as users know them.
TUNING = (
    "--acquire",
    "--ttft",
    "--parts-per-turn",
    "--part-gap",
    "--part-chars",
    "--reasoning-parts",
    "--tool-steps",
    "--output-tokens",
    "--time-scale",
    "--error-rate",
    "--error-kind",
    "--error-retries",
    "--rate-limit",
    "--drop-rate",
    "--stall-rate",
    "--stall-ms",
    "--malformed-rate",
    "--close-rate",
    "--close-code",
    "--stream-error-rate",
    "--seed",
    "--llm-url",
)
SERVER_FLAGS = (
    "--host",
    "--port",
    "--era",
    "--token",
    "--config",
    "--no-default-model",
    "--no-agents-experiment",
    "--ws-ping-interval",
    "--log-level",
)


def test_help_documents_every_knob() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "loadtest.cli", "sim", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    parser = argparse.ArgumentParser()
    configure(parser)
    helps = {flag: action.help for action in parser._actions for flag in action.option_strings}
    for flag in (*SERVER_FLAGS, *TUNING):
        assert flag in result.stdout
        assert helps[flag] and len(helps[flag]) > 10, flag
    for word in ("CHATLOAD_SIM_TOKEN", "/__sim/counts", "/__sim/config", "firehose", "TOML"):
        assert word in result.stdout


#: A turn far longer than any shutdown, so a shutdown that waited for it shows.
TURN_MS = 60_000


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_start_line_and_clean_shutdown(sig: int) -> None:
    sim = Sim(["--era", "d", "--ttft", str(TURN_MS)])
    assert re.fullmatch(r"chatload sim listening on http://127\.0\.0\.1:\d+ \(era d\)\n", sim.line)
    chat = sim.api.post("/api/v2/chats", json=create_body("d")).json()
    stream = sim.stream(f"/api/v2/chats/{chat['id']}/stream")
    stream.until(lambda e: e["type"] == "status")
    code, seconds, out, _ = sim.stop(sig)
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            stream.socket.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert code == 0
    # It did not wait for the turn in flight (its first output is TURN_MS away), however
    # busy the machine is.
    assert seconds < TURN_MS / 1000 / 2
    assert out == ""


def test_config_file_flags_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "sim.toml"
    config.write_text(
        'parts_per_turn = 7\ntime_scale = 0.5\npart_gap_ms = { dist = "uniform", min = 1, max = 3 }\n'
        "[faults]\ndrop_rate = 0.25\n"
    )
    env = {**os.environ, "CHATLOAD_SIM_TOKEN": "from-the-environment-42"}
    command = [sys.executable, "-m", "loadtest.cli", "sim", "--port", "0", "--config", str(config)]
    process = subprocess.Popen(
        [*command, "--parts-per-turn", "9", "--ttft", "lognormal:200,0.3"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[4]
        current = httpx.get(f"{url}/__sim/config").json()
        assert current["parts_per_turn"] == 9
        assert current["time_scale"] == 0.5
        assert current["faults"]["drop_rate"] == 0.25
        assert current["part_gap_ms"]["dist"] == "uniform"
        assert current["ttft_ms"] == {
            **current["ttft_ms"],
            "dist": "lognormal",
            "p50": 200,
            "sigma": 0.3,
        }
        me = httpx.get(
            f"{url}/api/v2/users/me", headers={"Coder-Session-Token": "from-the-environment-42"}
        )
        assert me.status_code == 200
        bad = httpx.patch(f"{url}/__sim/config", json={"error_rate": 2})
        assert bad.status_code == 400
        assert bad.json()["validations"][0]["field"] == "error_rate"
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)


def test_invalid_config_is_rejected(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("parts_per_turn = -1\n")
    result = subprocess.run(
        [sys.executable, "-m", "loadtest.cli", "sim", "--port", "0", "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "parts_per_turn" in result.stderr


def test_websocket_pings() -> None:
    """Coder pings every stream (15 s by default); here every 0.1 s, seen on a raw socket."""
    sim = Sim(["--era", "b", "--ws-ping-interval", "0.1"])
    try:
        chat = sim.api.post("/api/experimental/chats", json=create_body("b")).json()
        host, port = sim.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            raw.sendall(
                f"GET /api/experimental/chats/{chat['id']}/stream HTTP/1.1\r\nHost: {host}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                f"Coder-Session-Token: {sim.token}\r\n\r\n".encode()
            )
            received = b""
            # Until the first ping (every 0.1 s): generous, as the loop ends on it.
            deadline = time.monotonic() + 30
            while b"\x89\x04" not in received and time.monotonic() < deadline:
                received += raw.recv(65536)
        head = received.split(b"\r\n", 1)[0]
        assert b" 101 " in head
        assert b"permessage-deflate" not in received.split(b"\r\n\r\n", 1)[0].lower()
        assert b"\x89\x04" in received, "a ping frame with a 4-byte payload"
    finally:
        sim.stop()
