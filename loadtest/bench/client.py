"""The generator's capacity: four readers on the same firehose from the simulator.

The simulator runs pinned to one CPU and each reader to another, so a figure is what one
worker process does on one core. Rates are per CPU-second of the reader, and each is the best
of several rounds that take turns, so a noisy neighbour shifts no ratio by much.
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
ROUNDS = 3
KINDS = ("decode", "chatload", "websocket-client", "websocket-client-tuned")
#: Frames a calibration read takes, by frame size: enough to time the slowest reader.
CALIBRATION_FRAMES = {1: 5_000, 20: 1_000}


def _cpus() -> tuple[int, int]:
    """(reader CPU, simulator CPU): two different ones where the machine has them."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    return cpus[0], cpus[-1]


def _pinned(cpu: int) -> Any:
    def pin() -> None:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {cpu})

    return pin


def _reader(kind: str, url: str, cpu: int, *extra: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "loadtest.bench.readers", kind, url, *extra],
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


def _best_rates(firehose: str, batch: int, seconds: float, cpu: int) -> dict[str, dict[str, float]]:
    """Each reader's best events and frames per CPU-second over ``ROUNDS`` rounds."""
    url = f"{firehose}&batch={batch}&frames="
    frames = {}
    for kind in KINDS:
        probe = _reader(kind, url + str(CALIBRATION_FRAMES[batch]), cpu)
        frames[kind] = max(1_000, int(probe["frames"] / probe["cpu_s"] * seconds))
    best: dict[str, dict[str, float]] = {kind: {"events": 0.0, "frames": 0.0} for kind in KINDS}
    for _ in range(ROUNDS):
        for kind in KINDS:
            result = _reader(kind, url + str(frames[kind]), cpu)
            if result["frames"] != frames[kind]:
                raise RuntimeError(f"reader {kind} read {result['frames']} of {frames[kind]}")
            rate = result["events"] / result["cpu_s"]
            if rate > best[kind]["events"]:
                best[kind] = {"events": rate, "frames": result["frames"] / result["cpu_s"]}
    return best


def run_client_bench(seconds: float = 2.0, idle_streams: int = IDLE_STREAMS) -> list[Row]:
    reader_cpu, sim_cpu = _cpus()
    token = secrets.token_urlsafe(16)
    _pinned(sim_cpu)()  # the simulator inherits this CPU
    sim = SimProcess.start("b", token, {"rate_limit_per_minute": -1}, quiet=True)
    _pinned(reader_cpu)()
    rows: list[Row] = []
    if reader_cpu == sim_cpu:
        print("  (one CPU only: the simulator shares the readers' CPU; figures are low)")
    try:
        ws_base = sim.url.replace("http://", "ws://")
        for batch in (20, 1):
            best = _best_rates(f"{ws_base}/__sim/firehose?", batch, seconds, reader_cpu)
            label = f"{batch:>2}-event frames:"
            for kind in KINDS:
                rows.append((f"{label} {kind} reader", best[kind]["events"], "events/cpu-s"))
                if batch == 1:
                    rows.append((f"{label} {kind} reader", best[kind]["frames"], "frames/cpu-s"))
            chatload = best["chatload"]["events"]
            rows.append(
                (
                    f"{label} measuring overhead (chatload vs decode)",
                    100 * (1 - chatload / best["decode"]["events"]),
                    "%",
                )
            )
            for baseline in ("websocket-client", "websocket-client-tuned"):
                rows.append(
                    (f"{label} chatload vs {baseline}", chatload / best[baseline]["events"], "x")
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
        idle = _reader("idle", url, reader_cpu, str(idle_streams))
        rows.append(
            (f"{idle_streams:,} idle streams held: memory", idle["kb_per_stream"], "KB/stream")
        )
    finally:
        sim.stop()
    return rows


def _org(url: str, token: str) -> str:
    me = httpx.get(f"{url}/api/v2/users/me", headers={"Coder-Session-Token": token}, timeout=10)
    return str(me.json()["organization_ids"][0])
