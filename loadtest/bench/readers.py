"""Stream readers the client bench runs, each in its own process pinned to one core.

``python -m loadtest.bench.readers KIND URL SECONDS`` reads the simulator's firehose for
SECONDS and prints one JSON line: events, frames, wall and CPU seconds. All kinds run under
gevent, as a Locust worker does:
- ``decode``: chatload's socket reader, decode only (the floor);
- ``chatload``: the full measuring path of a chatload user (decode, tracker, recorder,
  decode-time histogram, the health sampler);
- ``websocket-client``: the reader Locust plugins have used, decoding with orjson.
``idle URL COUNT`` opens COUNT streams, holds them, and prints the memory they cost.
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import gevent  # noqa: E402
import orjson  # noqa: E402

from loadtest.client.ws import WebSocketStream  # noqa: E402
from loadtest.decode import decode_frame  # noqa: E402
from loadtest.metrics.recorder import Recorder  # noqa: E402


def _decode_only(url: str, seconds: float) -> tuple[int, int]:
    ws = WebSocketStream(url, {})
    ws.connect()
    deadline = time.perf_counter_ns() + int(seconds * 1e9)
    events = frames = 0
    for payload, t in ws.frames():
        decoded = decode_frame(payload)
        if type(decoded) is list:
            events += len(decoded)
            frames += 1
        if t > deadline:
            break
    ws.close()
    return events, frames


def _chatload(url: str, seconds: float) -> tuple[int, int]:
    from loadtest.client.measure import measure_frames
    from loadtest.stream import StreamMeter
    from loadtest.turns import TurnTracker

    recorder = Recorder(time.perf_counter_ns(), time.time())
    sampler = gevent.spawn(_sample, recorder)
    tracker = TurnTracker(recorder)
    tracker.start(time.perf_counter_ns())
    tracker.feed([{"type": "message", "message": {"id": 1, "role": "user"}}], 1)
    meter = StreamMeter(recorder, tracker)
    ws = WebSocketStream(url, {})
    ws.connect()
    deadline = time.perf_counter_ns() + int(seconds * 1e9)

    def until_deadline() -> Iterator[tuple[bytes, int]]:
        for frame in ws.frames():
            yield frame
            if frame[1] > deadline:
                return

    measure_frames(until_deadline(), meter, recorder, lambda: None)
    ws.close()
    sampler.kill()
    snap = recorder.snapshot()
    return snap.count("events"), snap.count("frames")


def _sample(recorder: Recorder) -> None:
    cpu = time.process_time()
    while True:
        gevent.sleep(1.0)
        now = time.process_time()
        recorder.generator_sample((now - cpu) * 100, 0)
        cpu = now


def _websocket_client(url: str, seconds: float) -> tuple[int, int]:
    import websocket

    ws = websocket.create_connection(url, skip_utf8_validation=True)
    deadline = time.perf_counter() + seconds
    events = frames = 0
    while time.perf_counter() < deadline:
        try:
            data = ws.recv()
        except websocket.WebSocketConnectionClosedException:
            break
        events += len(orjson.loads(data))
        frames += 1
        gevent.sleep(0)
    ws.close()
    return events, frames


def _idle(url: str, count: int) -> dict[str, float]:
    """Hold ``count`` streams open, each read by its own greenlet as a user's would be."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 512)), hard))
    before = _rss_kb()
    streams, readers = [], []
    for _ in range(count):
        ws = WebSocketStream(url, {})
        ws.connect()
        streams.append(ws)
        readers.append(gevent.spawn(lambda w=ws: [None for _ in w.frames()]))
    gevent.sleep(1.0)
    after = _rss_kb()
    for ws in streams:
        ws.abort()
    gevent.killall(readers, timeout=5)
    return {"streams": count, "kb_per_stream": (after - before) / count}


def _rss_kb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return float(line.split()[1])
    return 0.0


READERS = {"decode": _decode_only, "chatload": _chatload, "websocket-client": _websocket_client}


def main() -> None:
    kind, url, amount = sys.argv[1], sys.argv[2], sys.argv[3]
    if kind == "idle":
        print(json.dumps(_idle(url, int(amount))))
        return
    if kind == "chatload":
        import locust  # noqa: F401  the worker's own environment: gevent patching and all

    cpu0, wall0 = time.process_time(), time.perf_counter()
    events, frames = READERS[kind](url, float(amount))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(json.dumps({"events": events, "frames": frames, "cpu_s": cpu, "wall_s": wall}))


if __name__ == "__main__":
    main()
