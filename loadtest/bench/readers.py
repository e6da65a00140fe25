"""Stream readers the client bench runs, each in its own process pinned to one core.

``python -m loadtest.bench.readers KIND URL`` reads the simulator's firehose (``URL`` says
how many frames) until the server closes it and prints one JSON line: events, frames, wall
and CPU seconds. Every kind reads the whole stream, so none pays for checking a clock. All
run under gevent with Locust loaded, as in a Locust worker:
- ``decode``: chatload's socket reader, decode only (the floor);
- ``chatload``: the full measuring path of a chatload user (decode, tracker, recorder,
  decode-time histogram, the health sampler);
- ``chatload-websockets-parser``: the same, with every frame through websockets' own
  parser instead of chatload's fast one (what chatload read with before);
- ``websocket-client``: the reader Locust plugins have shipped (``SocketIOUser``): a
  ``create_connection`` with default options, a greenlet calling ``recv()``, stdlib
  ``json``, a debug log line and a Locust request event per message;
- ``websocket-client-tuned``: the same library at its fastest: UTF-8 validation off, orjson,
  no per-message event.
``idle URL COUNT`` opens COUNT streams, holds them, and prints the memory they cost.
``serve KIND`` reads one URL a line from stdin and answers each with that JSON line: the bench
keeps one such process per reader and hands them short rounds in turn.
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import logging  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import locust  # noqa: E402  every reader runs in a Locust worker's environment
import orjson  # noqa: E402

from loadtest.bench.core import running_turn_meter  # noqa: E402
from loadtest.client.ws import WebSocketStream  # noqa: E402
from loadtest.core.decode import decode_frame  # noqa: E402
from loadtest.core.recorder import Recorder  # noqa: E402
from loadtest.procstat import resident_kb  # noqa: E402


def _decode_only(url: str) -> tuple[int, int]:
    ws = WebSocketStream(url, {})
    ws.connect()
    events = frames = 0
    for payload, _ in ws.frames():
        decoded = decode_frame(payload)
        if type(decoded) is list:
            events += len(decoded)
            frames += 1
    return events, frames


def _chatload(url: str, fast_frames: bool = True) -> tuple[int, int]:
    recorder = Recorder(time.perf_counter_ns(), time.time())
    sampler = gevent.spawn(_sample, recorder)
    meter = running_turn_meter(recorder)
    ws = WebSocketStream(url, {}, fast_frames=fast_frames)
    ws.connect()
    for _ in meter.read(ws.frames()):
        pass
    sampler.kill()
    measured = recorder.measurement()
    return measured.count("events"), measured.count("frames")


def _sample(recorder: Recorder) -> None:
    cpu = time.process_time()
    while True:
        gevent.sleep(1.0)
        now = time.process_time()
        recorder.cpu_sample((now - cpu) * 100)
        cpu = now


def _websocket_client(url: str) -> tuple[int, int]:
    """The receive loop of locust-plugins' ``SocketIOUser``, on a plain JSON stream."""
    import websocket
    from locust.env import Environment

    environment = Environment(events=locust.events)
    environment.create_local_runner()  # its request listener fills Locust's stats
    request = environment.events.request
    ws = websocket.create_connection(url)
    totals = [0, 0]

    def on_message(message: str) -> None:
        batch = json.loads(message)
        totals[0] += len(batch)
        totals[1] += 1
        request.fire(
            request_type="WSR",
            name="stream",
            response_time=0,
            response_length=len(message),
            exception=None,
            context={},
        )

    def receive_loop() -> None:
        while True:
            try:
                message = ws.recv()
            except websocket.WebSocketConnectionClosedException:
                return
            if not isinstance(message, str) or not message:  # the close frame
                return
            logging.debug(f"WSR: {message}")
            on_message(message)

    gevent.spawn(receive_loop).join()
    stats = environment.stats.total
    assert stats.num_requests == totals[1], "every message reached Locust's stats"
    return totals[0], totals[1]


def _websocket_client_tuned(url: str) -> tuple[int, int]:
    import websocket

    ws = websocket.create_connection(url, skip_utf8_validation=True)
    events = frames = 0
    while True:
        try:
            data = ws.recv()
        except websocket.WebSocketConnectionClosedException:
            break
        if not data:
            break
        events += len(orjson.loads(data))
        frames += 1
    return events, frames


def _idle(url: str, count: int) -> dict[str, float]:
    """Hold ``count`` streams open, each read by its own greenlet as a user's would be."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 512)), hard))
    before = resident_kb()
    streams, readers = [], []
    for _ in range(count):
        ws = WebSocketStream(url, {})
        ws.connect()
        streams.append(ws)
        readers.append(gevent.spawn(lambda w=ws: [None for _ in w.frames()]))
    gevent.sleep(1.0)
    after = resident_kb()
    for ws in streams:
        ws.abort()
    gevent.killall(readers, timeout=5)
    return {"streams": count, "kb_per_stream": (after - before) / count}


READERS: dict[str, Any] = {
    "decode": _decode_only,
    "chatload": _chatload,
    "chatload-websockets-parser": lambda url: _chatload(url, fast_frames=False),
    "websocket-client": _websocket_client,
    "websocket-client-tuned": _websocket_client_tuned,
}


def _measure(kind: str, url: str) -> str:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    events, frames = READERS[kind](url)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return json.dumps({"events": events, "frames": frames, "cpu_s": cpu, "wall_s": wall})


def main() -> None:
    kind, url = sys.argv[1], sys.argv[2]
    if kind == "idle":
        print(json.dumps(_idle(url, int(sys.argv[3]))))
        return
    if kind == "serve":
        for line in sys.stdin:
            print(_measure(sys.argv[2], line.strip()), flush=True)
        return
    print(_measure(kind, url))


if __name__ == "__main__":
    main()
