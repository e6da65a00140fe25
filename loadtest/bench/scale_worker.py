"""The worker process of the scale bench: N active chats, each a stream and a watch socket.

``python -m loadtest.bench.scale_worker``, then on stdin one JSON line (``{"sims": [{"url",
"org", "tokens"}]}``: the simulators and an account per chat on each) and one line per step,
``N WINDOW_S LIMIT_S``: it grows to N chats (it stops starting chats after LIMIT_S), waits
for the new chats' first turns to end, and only then measures WINDOW_S seconds: its own CPU
%, the gevent loop's lag (a 10 ms sleep's overshoot, p99), its longest garbage collection,
the frames it read, the turns it posted, and its RSS; one JSON line a step. A line ``post
WINDOW_S`` measures instead how many turns a second the REST path posts back to back and the
worker's CPU per post. Each chat is its own user, as each Locust user is, on the REST client
and the measuring path ``chatload run`` uses (its tracker hears of each turn as it is posted);
it starts as a new user's does (create the chat, open its stream, open ``/chats/watch``),
then posts a turn every 30-60 s, which the simulator streams at its default pace, one event
per frame. A chat that fails to start is counted with its reason. stdin is read
cooperatively, so the chats go on between two steps.
"""

from gevent import monkey

monkey.patch_all()

import cProfile  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Iterator, Sequence  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import gevent.pool  # noqa: E402
import locust  # noqa: E402, F401  a Locust worker's environment
from gevent.fileobject import FileObjectPosix  # noqa: E402

from loadtest.client.rest import ChatClient, RestError  # noqa: E402
from loadtest.client.ws import HandshakeError, WebSocketStream  # noqa: E402
from loadtest.core.meter import StreamMeter  # noqa: E402
from loadtest.core.recorder import Recorder  # noqa: E402
from loadtest.core.tracker import TurnTracker  # noqa: E402
from loadtest.core.turn import Turn  # noqa: E402
from loadtest.locust.driver import http_error  # noqa: E402
from loadtest.procstat import resident_kb  # noqa: E402
from loadtest.protocol.eras import Era  # noqa: E402

TURN_EVERY_S = (30.0, 60.0)
#: Chats starting at once, per simulator process.
SETUP_CONCURRENCY = 64
#: How long the new chats' first turns get at most to finish before a window (the
#: simulator's default turn: ~0.3 s to first output, 20 deltas 20 ms apart).
SETTLE_S = 3.0
#: Chats that post back to back while the REST path's capacity is measured.
POSTERS = 64


def _drain(ended: Iterator[Sequence[Turn]]) -> None:
    """Read a watcher's stream to its end (it ends no turn)."""
    for _ in ended:
        pass


def _reason(exc: BaseException) -> str:
    """Why a chat failed to start, short and without a secret (no URL, no header)."""
    if isinstance(exc, RestError):
        return f"{exc.name}: HTTP {exc.status}" if exc.status else f"{exc.name}: {exc.message}"
    if isinstance(exc, HandshakeError):
        return f"websocket upgrade: HTTP {exc.status}"
    return f"{type(exc).__name__}: {exc}"[:120]


class Worker:
    def __init__(self, sims: list[dict[str, Any]]) -> None:
        #: (simulator URL, organization, its unused accounts' tokens)
        self.sims = [(s["url"], s["org"], list(s["tokens"])) for s in sims]
        self.recorder = Recorder(time.perf_counter_ns(), time.time())
        self.chats = 0
        self.posts = 0
        self.start_failures: Counter[str] = Counter()
        self.post_failures: Counter[str] = Counter()
        self.lags: list[float] = []
        self.gc_pauses: list[float] = []
        #: Chats whose first turn (the one creating the chat starts) has not ended yet.
        self.first_turns = 0
        #: When the last step's chats began and finished starting (``time.monotonic``).
        self.grown = [0.0, 0.0]
        self._gc_start = 0.0
        self._next = 0

    def add_chat(self, _: int = 0) -> None:
        url, org, tokens = self.sims[self._next % len(self.sims)]
        self._next += 1
        client = ChatClient(url, tokens.pop(), Era.B)
        streams: list[WebSocketStream] = []
        # As chatload's conversation driver does: the tracker hears of each turn as it is
        # posted, and times it from there (time to first output, per output token...).
        tracker = TurnTracker(self.recorder)
        tracker.start(time.perf_counter_ns()).initial = True
        self.first_turns += 1
        try:
            chat, latency = client.create_chat("hi", org)
            self.recorder.request("chat_create_latency", latency)
            target, headers = client.stream_target(chat.id)
            streams.append(WebSocketStream(target, headers))
            streams[-1].connect()
            target, headers = client.watch_target()
            streams.append(WebSocketStream(target, headers))
            streams[-1].connect()
        except Exception as exc:  # counted, with its reason, in the step's line
            if isinstance(exc, RestError) and tracker.busy:
                self._ended_first(
                    tracker.fail(http_error("create_chat", exc), time.perf_counter_ns())
                )
            else:
                self.first_turns -= 1
            self.start_failures[_reason(exc)] += 1
            for stream in streams:
                stream.abort()
            client.close()
            return
        stream, watch = streams
        meter = StreamMeter(self.recorder, tracker, time.perf_counter_ns)
        watcher = StreamMeter(self.recorder)
        gevent.spawn(self._read, meter.read(stream.frames()))
        gevent.spawn(_drain, watcher.read(watch.frames()))
        gevent.spawn(self._turns, client, chat.id, tracker)
        self.chats += 1

    def _read(self, ended: Iterator[Sequence[Turn]]) -> None:
        """A chat's stream, read to its end: the turns its frames end."""
        for turns in ended:
            self._ended_first(turns)

    def _ended_first(self, turns: Sequence[Turn]) -> None:
        """Turns the tracker ended: a chat's first turn among them (it has no other then)."""
        for turn in turns:
            if turn.initial:
                self.first_turns -= 1

    def _turns(self, client: ChatClient, chat_id: str, tracker: TurnTracker) -> None:
        # The first wait is where a chat already posting every 30-60 s would be now (the
        # time left of a gap drawn by length): every chat's rate is steady from its start,
        # not lower for its first minute.
        low, high = TURN_EVERY_S
        gap = math.sqrt(random.uniform(low * low, high * high))
        gevent.sleep(random.uniform(0, gap))
        while True:
            turn = tracker.start(time.perf_counter_ns())
            try:
                response, latency = client.post_message(chat_id, "next")
                self.recorder.message_posted(latency, response.queued)
                self.posts += 1
            except RestError as exc:
                self.post_failures[_reason(exc)] += 1
                self._ended_first(
                    tracker.reject(turn, http_error("create_message", exc), time.perf_counter_ns())
                )
            gevent.sleep(random.uniform(*TURN_EVERY_S))

    def gc_timer(self, phase: str, info: dict[str, int]) -> None:
        """``gc.callbacks``: how long each collection of the oldest generation held the loop."""
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.gc_pauses.append((time.perf_counter() - self._gc_start) * 1000)

    def lag_probe(self) -> None:
        while True:
            t = time.perf_counter()
            gevent.sleep(0.01)
            self.lags.append((time.perf_counter() - t - 0.01) * 1000)

    def grow(self, n: int, limit_s: float) -> float:
        """Up to ``n`` chats, or as many as start within ``limit_s``."""
        self.grown = [time.monotonic(), 0.0]
        start = time.perf_counter()
        pool = gevent.pool.Pool(SETUP_CONCURRENCY * len(self.sims))
        for i in range(n - self.chats):
            if time.perf_counter() - start > limit_s or not any(t for _, _, t in self.sims):
                break
            pool.spawn(self.add_chat, i)
        pool.join()
        self.grown[1] = time.monotonic()
        return time.perf_counter() - start

    def measure(self, window: float) -> dict[str, float]:
        settle_start = time.perf_counter()
        while self.first_turns and time.perf_counter() < settle_start + SETTLE_S:
            gevent.sleep(0.05)  # the new chats' first turns finish
        settled = time.perf_counter() - settle_start
        frames0 = self.recorder.measurement().count("frames")
        posts0, self.lags, self.gc_pauses = self.posts, [], []
        profile = os.environ.get("CHATLOAD_SCALE_PROFILE")  # a pstats file of each window
        profiler = cProfile.Profile() if profile else None
        start = time.monotonic()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        gevent.sleep(window)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        end = time.monotonic()
        if profiler and profile:
            profiler.disable()
            profiler.dump_stats(f"{profile}.{self.chats}")
        lags = sorted(self.lags) or [0.0]
        return {
            "cpu_pct": 100 * cpu / wall,
            "lag_p99_ms": lags[min(len(lags) - 1, int(len(lags) * 0.99))],
            "frames_per_s": (self.recorder.measurement().count("frames") - frames0) / wall,
            "posts_per_s": (self.posts - posts0) / wall,
            "gc_max_ms": max(self.gc_pauses, default=0.0),
            "settled_s": settled,
            "first_turns_open": self.first_turns,
            "start": start,
            "end": end,
        }

    def post_capacity(self, window: float) -> dict[str, float]:
        """Turns posted back to back by ``POSTERS`` chats of their own (no sockets, so the
        CPU is the REST path's): posts a second and the worker's CPU per post."""
        chats: list[tuple[ChatClient, str]] = []
        for url, org, tokens in self.sims:
            for _ in range(POSTERS // len(self.sims)):
                if tokens:
                    client = ChatClient(url, tokens.pop(), Era.B)
                    chats.append((client, client.create_chat("hi", org)[0].id))
        done = [0, 0]
        stop = time.perf_counter() + window

        def post(client: ChatClient, chat_id: str) -> None:
            while time.perf_counter() < stop:
                try:
                    client.post_message(chat_id, "next", busy_behavior="interrupt")
                    done[0] += 1
                except RestError:
                    done[1] += 1

        start = time.monotonic()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        gevent.joinall([gevent.spawn(post, client, chat_id) for client, chat_id in chats])
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        for client, _ in chats:
            client.close()
        return {
            "start": start,
            "end": time.monotonic(),
            "posts_per_s": done[0] / wall,
            "cpu_us_per_post": 1e6 * cpu / max(1, done[0] + done[1]),
            "cpu_pct": 100 * cpu / wall,
            "failed": done[1],
        }


def main() -> None:
    # stdin read cooperatively: a plain read would stop every chat between two steps.
    commands = FileObjectPosix(sys.stdin.fileno(), "r", close=False)
    worker = Worker(json.loads(commands.readline())["sims"])
    gevent.spawn(worker.lag_probe)
    gc.callbacks.append(worker.gc_timer)
    rss0 = resident_kb()
    for line in commands:
        words = line.split()
        if words[0] == "post":
            print(json.dumps(worker.post_capacity(float(words[1]))), flush=True)
            continue
        n, window, limit_s = (float(x) for x in words)
        setup_s = worker.grow(int(n), limit_s)
        result: dict[str, Any] = dict(worker.measure(window))
        result.update(
            chats=worker.chats,
            start_failures=dict(worker.start_failures),
            post_failures=dict(worker.post_failures),
            setup_s=setup_s,
            setup_start=worker.grown[0],
            setup_end=worker.grown[1],
            kb_per_chat=(resident_kb() - rss0) / max(1, worker.chats),
        )
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
