"""The worker process of the scale bench: N active chats, each a stream and a watch socket.

``python -m loadtest.bench.scale_worker URL TOKEN ORG`` then one line per step on stdin,
``N WINDOW_S LIMIT_S``: it grows to N chats (each its own user, as each Locust user is; it
stops starting chats after LIMIT_S), lets them settle, and measures WINDOW_S seconds: its own CPU %, the gevent loop's lag (a 10 ms sleep's
overshoot, p99), the frames it read, the posts it made, and its RSS; one JSON line a step.
Each chat posts a turn every 30-60 s (the first at a random point of that), and the
simulator streams it at its default pace: one event per frame.
"""

from gevent import monkey

monkey.patch_all()

import cProfile  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import gevent.pool  # noqa: E402
import httpx  # noqa: E402
import locust  # noqa: E402, F401  a Locust worker's environment

from loadtest.client.ws import WebSocketStream  # noqa: E402
from loadtest.core.meter import StreamMeter  # noqa: E402
from loadtest.core.recorder import Recorder  # noqa: E402
from loadtest.core.tracker import TurnTracker  # noqa: E402
from loadtest.procstat import resident_kb  # noqa: E402

TURN_EVERY_S = (30.0, 60.0)
SETUP_CONCURRENCY = 32
TOKEN_HEADER = "Coder-Session-Token"


class Worker:
    def __init__(self, url: str, token: str, org: str) -> None:
        self.url = url.rstrip("/")
        self.ws = self.url.replace("http://", "ws://")
        self.admin = {TOKEN_HEADER: token}
        self.org = org
        self.http = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=64))
        self.recorder = Recorder(time.perf_counter_ns(), time.time())
        self.chats = 0
        self.posts = 0
        self.errors = 0
        self.greenlets: list[Any] = []
        self.lags: list[float] = []

    def add_chat(self, _: int = 0) -> None:
        try:
            name = uuid.uuid4().hex[:12]
            user = self.http.post(
                f"{self.url}/api/v2/users",
                json={"email": f"{name}@bench.test", "username": name},
                headers=self.admin,
            ).json()
            key = self.http.post(
                f"{self.url}/api/v2/users/{user['id']}/keys", headers=self.admin
            ).json()["key"]
            auth = {TOKEN_HEADER: key}
            chat = self.http.post(
                f"{self.url}/api/experimental/chats",
                json={"content": [{"type": "text", "text": "hi"}], "organization_id": self.org},
                headers=auth,
            ).json()
            base = f"{self.ws}/api/experimental/chats"
            stream = WebSocketStream(f"{base}/{chat['id']}/stream", auth)
            stream.connect()
            watch = WebSocketStream(f"{base}/watch", auth)
            watch.connect()
        except Exception:
            self.errors += 1
            return
        tracker = TurnTracker(self.recorder)
        meter = StreamMeter(self.recorder, tracker, time.perf_counter_ns)
        watcher = StreamMeter(self.recorder)
        self.greenlets += [
            gevent.spawn(meter.read, stream.frames(), lambda ended: None),
            gevent.spawn(watcher.read, watch.frames(), lambda ended: None),
            gevent.spawn(self._turns, chat["id"], auth),
        ]
        self.chats += 1

    def _turns(self, chat_id: str, auth: dict[str, str]) -> None:
        gevent.sleep(random.uniform(0, TURN_EVERY_S[1]))
        while True:
            try:
                self.http.post(
                    f"{self.url}/api/experimental/chats/{chat_id}/messages",
                    json={"content": [{"type": "text", "text": "next"}]},
                    headers=auth,
                )
                self.posts += 1
            except Exception:
                self.errors += 1
            gevent.sleep(random.uniform(*TURN_EVERY_S))

    def lag_probe(self) -> None:
        while True:
            t = time.perf_counter()
            gevent.sleep(0.01)
            self.lags.append((time.perf_counter() - t - 0.01) * 1000)

    def grow(self, n: int, limit_s: float) -> float:
        """Up to ``n`` chats, or as many as start within ``limit_s``."""
        start = time.perf_counter()
        pool = gevent.pool.Pool(SETUP_CONCURRENCY)
        for i in range(n - self.chats):
            if time.perf_counter() - start > limit_s:
                break
            pool.spawn(self.add_chat, i)
        pool.join()
        return time.perf_counter() - start

    def measure(self, window: float) -> dict[str, float]:
        gevent.sleep(min(2.0, window / 2))  # the ramp's backlog drains
        frames0 = self.recorder.snapshot().count("frames")
        posts0, self.lags = self.posts, []
        profile = os.environ.get("CHATLOAD_SCALE_PROFILE")  # a pstats file of each window
        profiler = cProfile.Profile() if profile else None
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        gevent.sleep(window)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        if profiler and profile:
            profiler.disable()
            profiler.dump_stats(f"{profile}.{self.chats}")
        lags = sorted(self.lags) or [0.0]
        return {
            "cpu_pct": 100 * cpu / wall,
            "lag_p99_ms": lags[min(len(lags) - 1, int(len(lags) * 0.99))],
            "frames_per_s": (self.recorder.snapshot().count("frames") - frames0) / wall,
            "posts_per_s": (self.posts - posts0) / wall,
        }


def main() -> None:
    worker = Worker(*sys.argv[1:4])
    gevent.spawn(worker.lag_probe)
    rss0 = resident_kb()
    for line in sys.stdin:
        n, window, limit_s = (float(x) for x in line.split())
        setup_s = worker.grow(int(n), limit_s)
        result = worker.measure(window)
        result.update(
            chats=worker.chats,
            errors=worker.errors,
            setup_s=setup_s,
            kb_per_chat=(resident_kb() - rss0) / max(1, worker.chats),
        )
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
