"""The generator's capacity: five readers on the same frames, in short interleaved rounds.

Each reader is one long-lived process pinned to one CPU; the frames come from the other CPU.
The frame is the simulator's own (one of its firehose's), replayed by ``bench.replay`` back to
back, because the simulator sends fewer one-event frames a second than chatload now reads:
against it a reader's figure would be the simulator's pace. The readers take turns in many
short rounds (the order rotates each round), so a drift of the machine's speed lands on all
of them alike; each figure is the median of its rounds, printed with its spread (min-max),
and a ratio is the median of the ratios within each round.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import sys
from typing import IO, Any

import httpx

from loadtest.bench.core import Row
from loadtest.runner.processes import SimProcess

IDLE_STREAMS = 10_000
#: Rounds per frame size; each reader reads ``ROUND_SECONDS`` x ``--seconds`` of CPU a round.
ROUNDS = 15
ROUND_SECONDS = 0.15
KINDS = (
    "decode",
    "chatload",
    "chatload-websockets-parser",
    "websocket-client",
    "websocket-client-tuned",
)
#: Frames a calibration read takes, by frame size: enough to time the slowest reader.
CALIBRATION_FRAMES = {1: 5_000, 20: 1_000}


def two_cpus() -> tuple[int, int]:
    """(reader CPU, simulator CPU): two different ones where the machine has them."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    return cpus[0], cpus[-1]


def pinned_to(cpu: int) -> Any:
    """A function that pins the calling process to ``cpu`` (a child's ``preexec_fn``)."""

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
        preexec_fn=pinned_to(cpu),
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"reader {kind} failed: {out.stderr.strip()[-500:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


class _ReaderProcess:
    """One reader process, pinned, answering one round per URL it is handed."""

    def __init__(self, kind: str, cpu: int) -> None:
        self.kind = kind
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "loadtest.bench.readers", "serve", kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=pinned_to(cpu),
        )

    def read(self, url: str) -> dict[str, float]:
        stdin: IO[str] | None = self.proc.stdin
        stdout: IO[str] | None = self.proc.stdout
        assert stdin is not None and stdout is not None
        stdin.write(url + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"reader {self.kind} failed: {err.strip()[-500:]}")
        result: dict[str, float] = json.loads(line)
        return result

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def spread(values: list[float], unit: str, digits: int = 0) -> tuple[float, str]:
    """The median, and the unit with the interquartile range and the min-max."""
    mid = statistics.median(values)
    q1, _, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else (mid, mid, mid)
    iqr = 100 * (q3 - q1) / mid if mid else 0.0
    return mid, (
        f"{unit}  [IQR {q1:,.{digits}f} - {q3:,.{digits}f} ({iqr:.0f} %), "
        f"min-max {min(values):,.{digits}f} - {max(values):,.{digits}f}, n={len(values)}]"
    )


def _rounds(
    servers: dict[str, _ReaderProcess], replay: Any, batch: int, seconds: float
) -> dict[str, list[dict[str, float]]]:
    """Each reader's results over ``ROUNDS`` rounds, readers taking turns within each."""
    frames = {}
    for kind, server in servers.items():
        probe = server.read(replay.url(batch, CALIBRATION_FRAMES[batch]))
        frames[kind] = max(500, int(probe["frames"] / probe["cpu_s"] * seconds * ROUND_SECONDS))
    results: dict[str, list[dict[str, float]]] = {kind: [] for kind in servers}
    kinds = list(servers)
    for kind in kinds:  # a warm-up round, not counted
        servers[kind].read(replay.url(batch, frames[kind]))
    for r in range(ROUNDS):
        order = kinds[r % len(kinds) :] + kinds[: r % len(kinds)]
        for kind in order:
            result = servers[kind].read(replay.url(batch, frames[kind]))
            if result["frames"] != frames[kind]:
                raise RuntimeError(f"reader {kind} read {result['frames']} of {frames[kind]}")
            results[kind].append(result)
    return results


def _rows(batch: int, results: dict[str, list[dict[str, float]]]) -> list[Row]:
    label = f"{batch:>2}-event frames:"
    rows: list[Row] = []
    per = {k: [r["events"] / r["cpu_s"] for r in rs] for k, rs in results.items()}
    for kind, rates in per.items():
        if batch == 1:
            rows.append((f"{label} {kind} reader", *spread(rates, "frames/cpu-s")))
        else:
            rows.append((f"{label} {kind} reader", *spread(rates, "events/cpu-s")))
    chatload = per["chatload"]
    overhead = [100 * (1 - c / d) for c, d in zip(chatload, per["decode"], strict=True)]
    rows.append((f"{label} measuring overhead (chatload vs decode)", *spread(overhead, "%", 1)))
    for baseline in ("chatload-websockets-parser", "websocket-client", "websocket-client-tuned"):
        ratio = [c / b for c, b in zip(chatload, per[baseline], strict=True)]
        rows.append((f"{label} chatload vs {baseline}", *spread(ratio, "x", 2)))
    return rows


def run_client_bench(seconds: float = 1.0, idle_streams: int = IDLE_STREAMS) -> list[Row]:
    from loadtest.bench.replay import Replay
    from loadtest.client.ws import WebSocketStream

    reader_cpu, sim_cpu = two_cpus()
    token = secrets.token_urlsafe(16)
    pinned_to(sim_cpu)()  # the simulator and the replay server inherit this CPU
    sim = SimProcess.start("b", token, {"rate_limit_per_minute": -1}, quiet=True)
    rows: list[Row] = []
    if reader_cpu == sim_cpu:
        print("  (one CPU only: the server shares the readers' CPU; figures are low)")
    servers: dict[str, _ReaderProcess] = {}
    replay = None
    try:
        ws_base = sim.url.replace("http://", "ws://")
        payloads = {}
        for batch in (1, 20):
            ws = WebSocketStream(f"{ws_base}/__sim/firehose?batch={batch}&frames=1", {})
            ws.connect()
            payloads[batch] = next(iter(ws.frames()))[0]
            ws.close()
        replay = Replay(payloads)
        servers = {kind: _ReaderProcess(kind, reader_cpu) for kind in KINDS}
        for batch in (20, 1):
            rows += _rows(batch, _rounds(servers, replay, batch, seconds))
        chat = httpx.post(
            f"{sim.url}/api/experimental/chats",
            json={
                "content": [{"type": "text", "text": "idle"}],
                "organization_id": organization_of(sim.url, token),
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
        for server in servers.values():
            server.stop()
        if replay is not None:
            replay.stop()
        sim.stop()
    return rows


def organization_of(url: str, token: str) -> str:
    """The token's user's first organization on the simulator at ``url``."""
    me = httpx.get(f"{url}/api/v2/users/me", headers={"Coder-Session-Token": token}, timeout=10)
    return str(me.json()["organization_ids"][0])
