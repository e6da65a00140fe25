"""The generator's capacity: three readers on the same firehose from the simulator.

The simulator runs pinned to one CPU and each reader to the other, so a figure is what one
worker process does on one core; the comparison is made in one run, on the same traffic.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from typing import Any

import httpx

from loadtest.bench.core import Row
from loadtest.runner.processes import SimProcess

IDLE_STREAMS = 10_000
KINDS = ("decode", "chatload", "websocket-client")


def _cpus() -> tuple[int, int]:
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    return cpus[0], cpus[-1]


def _pinned(cpu: int) -> Any:
    def pin() -> None:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {cpu})

    return pin


def _reader(kind: str, url: str, amount: float, cpu: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "loadtest.bench.readers", kind, url, str(amount)],
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=_pinned(cpu),
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"reader {kind} failed: {out.stderr.strip()[-500:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_client_bench(seconds: float = 2.0, idle_streams: int = IDLE_STREAMS) -> list[Row]:
    reader_cpu, sim_cpu = _cpus()
    token = secrets.token_urlsafe(16)
    _pinned(sim_cpu)()  # the simulator inherits this CPU
    sim = SimProcess.start("b", token, {"rate_limit_per_minute": -1}, quiet=True)
    _pinned(reader_cpu)()
    rows: list[Row] = []
    try:
        ws_base = sim.url.replace("http://", "ws://")
        for batch in (20, 1):
            url = f"{ws_base}/__sim/firehose?frames=100000000&batch={batch}"
            rates = {}
            for kind in KINDS:
                result = _reader(kind, url, seconds, reader_cpu)
                rates[kind] = result["events"] / result["wall_s"]
                rows.append((f"{batch:>2}-event frames: {kind} reader", rates[kind], "events/s"))
                if batch == 1:
                    rows.append(
                        (
                            f"{batch:>2}-event frames: {kind} reader",
                            result["frames"] / result["wall_s"],
                            "frames/s",
                        )
                    )
            rows.append(
                (
                    f"{batch:>2}-event frames: measuring overhead (chatload vs decode)",
                    100 * (1 - rates["chatload"] / rates["decode"]),
                    "%",
                )
            )
            rows.append(
                (
                    f"{batch:>2}-event frames: chatload vs websocket-client",
                    rates["chatload"] / rates["websocket-client"],
                    "x",
                )
            )
        chat = httpx.post(
            f"{sim.url}/api/experimental/chats",
            json={
                "content": [{"type": "text", "text": "idle"}],
                "organization_id": _org(sim.url, token),
            },
            headers={"Coder-Session-Token": token},
            timeout=10,
        ).json()
        url = f"{ws_base}/api/experimental/chats/{chat['id']}/stream?coder_session_token={token}"
        idle = _reader("idle", url, idle_streams, reader_cpu)
        rows.append(
            (f"{idle_streams:,} idle streams held: memory", idle["kb_per_stream"], "KB/stream")
        )
    finally:
        sim.stop()
    return rows


def _org(url: str, token: str) -> str:
    me = httpx.get(f"{url}/api/v2/users/me", headers={"Coder-Session-Token": token}, timeout=10)
    return str(me.json()["organization_ids"][0])
