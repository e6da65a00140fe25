"""Every figure of ``docs/metrics.md`` for one process, and its exact merge across processes.

Cost rules (ARCHITECTURE.md): per-event facts are plain integer counts; histograms are
recorded per frame and per turn, never per event. Times come in as ``perf_counter_ns``
values from the edge; latencies are kept in µs, the decode cost in ns.

A ``Recorder`` turns into a ``Snapshot`` (plain data: JSON- and msgpack-safe) which adds to
other snapshots exactly: N workers' snapshots summed equal one recorder fed everything.
Read figures from a snapshot: per-frame facts are folded into counts only when one is taken.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from loadtest.metrics.histogram import Histogram

if TYPE_CHECKING:
    from loadtest.turns import ErrorInfo, Turn

NS_PER_US: Final = 1_000
NS_PER_S: Final = 1_000_000_000

#: Latencies in µs (the report shows ms). ``*_uncorrected`` exist only in open-loop runs.
LATENCIES: Final = (
    "chat_create_latency",
    "chat_message_latency",
    "chat_message_latency_queued",
    "stream_connect_latency",
    "time_to_running",
    "time_to_first_output",
    "time_to_terminal_status",
    "time_to_running_uncorrected",
    "time_to_first_output_uncorrected",
    "time_to_terminal_status_uncorrected",
    "inter_frame_gap",
    #: Derived, not recorded: inter_frame_gap plus a zero per part that shared a frame.
    "inter_part_gap",
    "time_per_output_token",
    "conversation_duration",
    "schedule_lag",
    "queue_wait",
    "retry_delay",
    #: The generator's own health: how late a 1-second sampler greenlet woke up.
    "loop_lag",
)
#: Value distributions, each with the factor its stored integers carry.
DISTRIBUTIONS: Final[dict[str, int]] = {
    "events_per_frame": 1,
    "frame_bytes": 1,
    "parts_per_frame": 1,
    "retries_per_turn": 1,
    "output_tokens_per_turn": 1,
    "output_tokens_per_s": 1000,
    #: ns per frame: the generator's own decode + record cost.
    "decode_time_ns": 1,
}

#: Counters that merge by addition.
COUNTS: Final = (
    "turns_started",
    "turns_completed",
    "turns_failed",
    "turns_unfinished",
    "turns_interrupted",
    "turns_promoted",
    "turns_retried",
    "turns_good",
    "retry_recovered",
    "retry_exhausted",
    "frames",
    "events",
    "bytes",
    "pings",
    "decode_errors",
    "snapshot_events",
    "orphan_parts",
    "parts",
    "output_tokens",
    "retry_events",
    "error_events",
    "queue_updates",
    "queued_messages",
    "queue_full",
    "rate_limited",
    "http_requests",
    "http_errors",
    "http_connection_errors",
    "streams_opened",
    "stream_reconnects",
    "streams_closed_abnormally",
    #: The era the first frame showed (servers before v2.37 do not say in buildinfo).
    "streams_era_a",
    "streams_era_b",
)
#: Gauges that merge by maximum.
MAXIMA: Final = ("max_queue_length", "cpu_permille_max")
#: Levels now (not totals): the latest sample per process, summed across processes.
LEVELS: Final = ("open_streams",)

#: Columns of a 1-second time-series bucket (each merges by addition).
SERIES_COLUMNS: Final = (
    "frames",
    "events",
    "bytes",
    "turns_started",
    "turns_completed",
    "errors",
    "retries",
    "active_streams",
)
_FRAMES, _EVENTS, _BYTES, _STARTED, _COMPLETED, _ERRORS, _RETRIES, _ACTIVE = range(8)
#: Per-second latency histograms, for percentiles over time.
SERIES_LATENCIES: Final = ("time_to_first_output", "time_to_terminal_status")

#: Distinct error rows kept; further distinct ones are folded into one "other" row.
MAX_ERROR_ROWS: Final = 200

ErrorKey = tuple[str, str | None, str | None, int | None, bool | None, str]


@dataclass
class SecondBucket:
    columns: list[int] = field(default_factory=lambda: [0] * len(SERIES_COLUMNS))
    latencies: dict[str, Histogram] = field(default_factory=dict)


class Recorder:
    """Collects one process's measurements. Pure: no clock, no I/O."""

    __slots__ = (
        "_bucket",
        "_bucket_end",
        "_bucket_start",
        "_decode_time",
        "_events_per_frame",
        "_frame_bytes",
        "_inter_frame_gap",
        "_parts_per_frame",
        "_run_events_per_frame",
        "_run_frame_bytes",
        "_same_read_gaps",
        "counts",
        "dist",
        "errors",
        "latency",
        "levels",
        "maxima",
        "origin_epoch_s",
        "origin_ns",
        "series",
        "turn_slos",
    )

    def __init__(self, origin_ns: int = 0, origin_epoch_s: float = 0.0) -> None:
        #: ``origin_ns`` (monotonic) happened at ``origin_epoch_s`` (wall): buckets are keyed
        #: by wall-clock second, so buckets of different processes line up when merged.
        self.origin_ns = origin_ns
        self.origin_epoch_s = origin_epoch_s
        self.latency: dict[str, Histogram] = {name: Histogram() for name in LATENCIES}
        self.dist: dict[str, Histogram] = {name: Histogram() for name in DISTRIBUTIONS}
        self.counts: dict[str, int] = dict.fromkeys(COUNTS, 0)
        self.maxima: dict[str, int] = dict.fromkeys(MAXIMA, 0)
        self.levels: dict[str, int] = dict.fromkeys(LEVELS, 0)
        self.errors: dict[ErrorKey, int] = {}
        self.series: dict[int, SecondBucket] = {}
        #: Per-turn SLO bounds in µs by latency name; a turn within all counts as goodput.
        self.turn_slos: dict[str, int] = {}
        # The current second's bucket and its bounds [start, end): checked inline per frame.
        self._bucket_start = 0
        self._bucket_end = 0
        self._bucket = SecondBucket()
        # Per-frame facts are plain tallies (an inline dict increment, no call): the current
        # second's frames by event count and by size. When the second ends they become its
        # bucket's columns and join the run's tallies, which become histograms, exactly, at
        # snapshot time. The frame, event and byte counts are the tallies' sums.
        self._events_per_frame: dict[int, int] = {}
        self._frame_bytes: dict[int, int] = {}
        self._run_events_per_frame: dict[int, int] = {}
        self._run_frame_bytes: dict[int, int] = {}
        self._parts_per_frame: dict[int, int] = {}
        self._inter_frame_gap = self.latency["inter_frame_gap"]
        #: Part frames of a turn read in the same socket read as the turn's previous one:
        #: a gap of zero, counted rather than recorded one by one.
        self._same_read_gaps = 0
        self._decode_time = self.dist["decode_time_ns"]

    # ------------------------------------------------------------ time series

    def bucket(self, t: int) -> SecondBucket:
        """The 1-second bucket holding monotonic time ``t``."""
        if self._bucket_start <= t < self._bucket_end:
            return self._bucket
        self._settle_frames()
        epoch = self.origin_epoch_s + (t - self.origin_ns) / NS_PER_S
        key = int(epoch // 1)
        bucket = self.series.get(key)
        if bucket is None:
            bucket = self.series[key] = SecondBucket()
        self._bucket = bucket
        self._bucket_end = self.origin_ns + int((key + 1 - self.origin_epoch_s) * NS_PER_S)
        self._bucket_start = self._bucket_end - NS_PER_S
        return bucket

    def active_streams(self, t: int, count: int) -> None:
        """A sample of the streams this process holds open (the latest per second wins)."""
        self.bucket(t).columns[_ACTIVE] = count
        self.levels["open_streams"] = count

    # ------------------------------------------------------------ stream frames

    def frame(self, t: int, nbytes: int, nevents: int) -> None:
        """One data frame: its size and event count, in its second."""
        if not self._bucket_start <= t < self._bucket_end:
            self.bucket(t)
        tally = self._events_per_frame
        tally[nevents] = tally.get(nevents, 0) + 1
        tally = self._frame_bytes
        tally[nbytes] = tally.get(nbytes, 0) + 1

    def _settle_frames(self) -> None:
        """The current second's frame tallies into its bucket's columns and the run's."""
        by_events, by_size = self._events_per_frame, self._frame_bytes
        if not by_events:
            return
        frames = sum(by_events.values())
        events = sum(n * k for n, k in by_events.items())
        nbytes = sum(n * k for n, k in by_size.items())
        columns = self._bucket.columns
        columns[_FRAMES] += frames
        columns[_EVENTS] += events
        columns[_BYTES] += nbytes
        counts = self.counts
        counts["frames"] += frames
        counts["events"] += events
        counts["bytes"] += nbytes
        for run, second in (
            (self._run_events_per_frame, by_events),
            (self._run_frame_bytes, by_size),
        ):
            for value, n in second.items():
                run[value] = run.get(value, 0) + n
        self._events_per_frame = {}
        self._frame_bytes = {}

    def ping(self) -> None:
        self.counts["pings"] += 1

    def decode_error(self, reason: str, t: int) -> None:
        from loadtest.turns import ErrorInfo

        self.counts["decode_errors"] += 1
        self.error(ErrorInfo("decode", reason), t)

    def decode_time(self, ns: int) -> None:
        self._decode_time.record(ns)

    def snapshot_events(self, n: int) -> None:
        self.counts["snapshot_events"] += n

    def orphan_parts(self, n: int) -> None:
        """Parts that arrived when no turn of ours was in flight (a watcher, a late part)."""
        self.counts["orphan_parts"] += n

    def part_frame(self, turn: Turn, parts: int, t: int) -> None:
        """A frame carried ``parts`` message parts of ``turn`` (called before the turn
        notes this frame as its latest)."""
        tally = self._parts_per_frame
        tally[parts] = tally.get(parts, 0) + 1
        last = turn.last_part_frame_at
        if last is not None:
            if last == t:
                self._same_read_gaps += 1
            else:
                self._inter_frame_gap.record((t - last) // NS_PER_US)

    def retry_event(self, delay_ms: int | None, t: int) -> None:
        self.counts["retry_events"] += 1
        if delay_ms is not None:
            self.latency["retry_delay"].record(delay_ms * 1000)
        self.bucket(t).columns[_RETRIES] += 1

    def error_event(self) -> None:
        self.counts["error_events"] += 1

    def queue_length(self, length: int) -> None:
        self.counts["queue_updates"] += 1
        if length > self.maxima["max_queue_length"]:
            self.maxima["max_queue_length"] = length

    def queue_wait(self, ns: int) -> None:
        self.latency["queue_wait"].record(ns // NS_PER_US)

    # ------------------------------------------------------------ requests and streams

    def http_request(self, ok: bool, connection_error: bool = False) -> None:
        """Every REST call: failed ones are ``http_errors``; of those, the ones that got no
        answer at all (refused, reset: the client's side) are also ``http_connection_errors``."""
        counts = self.counts
        counts["http_requests"] += 1
        if not ok:
            counts["http_errors"] += 1
            if connection_error:
                counts["http_connection_errors"] += 1

    def request(self, name: str, ns: int) -> None:
        """An HTTP request's latency (write -> response headers) under a LATENCIES name."""
        hist = self.latency.get(name)
        if hist is not None:
            hist.record(ns // NS_PER_US)

    def message_posted(self, ns: int, queued: bool) -> None:
        self.request("chat_message_latency", ns)
        if queued:
            self.counts["queued_messages"] += 1
            self.latency["chat_message_latency_queued"].record(ns // NS_PER_US)

    def stream_opened(self, ns: int, reconnect: bool = False) -> None:
        self.counts["streams_opened"] += 1
        if reconnect:
            self.counts["stream_reconnects"] += 1
        self.latency["stream_connect_latency"].record(ns // NS_PER_US)

    def error(self, info: ErrorInfo, t: int) -> None:
        """One failure, by stage and structure. Rows are capped; the rest fold into one."""
        if info.stage == "stream_closed":
            self.counts["streams_closed_abnormally"] += 1
        key: ErrorKey = (
            info.stage,
            info.kind,
            info.provider,
            info.status_code,
            info.retryable,
            info.message[:300],
        )
        if key not in self.errors and len(self.errors) >= MAX_ERROR_ROWS:
            key = (info.stage, "other", None, None, None, "(further distinct errors)")
        self.errors[key] = self.errors.get(key, 0) + 1
        self.bucket(t).columns[_ERRORS] += 1

    # ------------------------------------------------------------ turns

    def turn_started(self, turn: Turn) -> None:
        self.counts["turns_started"] += 1
        self.bucket(turn.t0).columns[_STARTED] += 1
        if turn.intended is not None:
            self.latency["schedule_lag"].record(max(0, turn.t0 - turn.intended) // NS_PER_US)

    def turn_ended(self, turn: Turn) -> None:
        """Record every per-turn figure of a turn that ended (see ``Turn.outcome``)."""
        counts = self.counts
        outcome = turn.outcome
        if outcome == "unfinished":
            counts["turns_unfinished"] += 1
            return
        end = turn.terminal_at if turn.terminal_at is not None else turn.t0
        bucket = self.bucket(end)
        self.dist["retries_per_turn"].record(turn.retries)
        if turn.retries:
            counts["turns_retried"] += 1
        if outcome == "failed":
            counts["turns_failed"] += 1
            if turn.retries:
                counts["retry_exhausted"] += 1
            if turn.error is not None:
                self.error(turn.error, end)
            return
        counts["turns_completed"] += 1
        bucket.columns[_COMPLETED] += 1
        if outcome == "interrupted":
            counts["turns_interrupted"] += 1
        elif outcome == "promoted":
            counts["turns_promoted"] += 1
        if turn.retries:
            counts["retry_recovered"] += 1
        self._turn_latencies(turn, bucket)

    def _turn_latencies(self, turn: Turn, bucket: SecondBucket) -> None:
        latency = self.latency
        observed: dict[str, int] = {}
        for name, at in (
            ("time_to_running", turn.running_at),
            ("time_to_first_output", turn.first_output_at),
            ("time_to_terminal_status", turn.terminal_at if turn.terminal_live else None),
        ):
            if at is None:
                continue
            us = (at - turn.origin) // NS_PER_US
            latency[name].record(us)
            observed[name] = us
            if turn.intended is not None:
                latency[name + "_uncorrected"].record((at - turn.t0) // NS_PER_US)
            if name in SERIES_LATENCIES:
                hist = bucket.latencies.get(name)
                if hist is None:
                    hist = bucket.latencies[name] = Histogram()
                hist.record(us)
        tokens = turn.output_tokens
        self.dist["output_tokens_per_turn"].record(tokens)
        self.counts["output_tokens"] += tokens
        first, last = turn.first_output_at, turn.terminal_at
        if first is not None and last is not None and turn.terminal_live and last > first:
            if tokens > 1:
                tpot = (last - first) // (tokens - 1) // NS_PER_US
                latency["time_per_output_token"].record(tpot)
                observed["time_per_output_token"] = tpot
            if tokens > 0:
                rate = tokens * NS_PER_S * DISTRIBUTIONS["output_tokens_per_s"] // (last - first)
                self.dist["output_tokens_per_s"].record(rate)
        if all(observed.get(name, 0) <= bound for name, bound in self.turn_slos.items()):
            self.counts["turns_good"] += 1

    def conversation(self, ns: int) -> None:
        self.latency["conversation_duration"].record(ns // NS_PER_US)

    # ------------------------------------------------------------ snapshot and merge

    def cpu_sample(self, cpu_percent: float) -> None:
        """One sample of this process's CPU use over the last second."""
        permille = int(cpu_percent * 10)
        if permille > self.maxima["cpu_permille_max"]:
            self.maxima["cpu_permille_max"] = permille

    def loop_lag(self, ns: int) -> None:
        """How late a sampler greenlet woke: the process's scheduling lag."""
        self.latency["loop_lag"].record(ns // NS_PER_US)

    def _inter_part_gap(self, parts: int) -> Histogram:
        """Between consecutive parts of a turn: each frame gap, and a zero for every part
        that shared its frame with the one before (they share its arrival time)."""
        gaps = Histogram()
        gaps.merge(self._inter_frame_gap)
        gaps.record_many(0, parts - sum(self._parts_per_frame.values()))
        return gaps

    def _fold_tallies(self) -> None:
        self._settle_frames()
        self._inter_frame_gap.record_many(0, self._same_read_gaps)
        self._same_read_gaps = 0
        for name, tally in (
            ("events_per_frame", self._run_events_per_frame),
            ("frame_bytes", self._run_frame_bytes),
            ("parts_per_frame", self._parts_per_frame),
        ):
            hist = self.dist[name] = Histogram()
            for value, n in tally.items():
                hist.record_many(value, n)

    def snapshot(self) -> Snapshot:
        """This recorder's figures, in the canonical form ``merge`` produces."""
        self._fold_tallies()
        counts = dict(self.counts)
        counts["parts"] = sum(n * k for n, k in self._parts_per_frame.items())
        self.latency["inter_part_gap"] = self._inter_part_gap(counts["parts"])
        raw = Snapshot(
            latency={k: h.to_wire() for k, h in self.latency.items() if h.count},
            dist={k: h.to_wire() for k, h in self.dist.items() if h.count},
            counts={k: v for k, v in counts.items() if v},
            maxima={k: v for k, v in self.maxima.items() if v},
            levels={k: v for k, v in self.levels.items() if v},
            errors=[[*key, n] for key, n in self.errors.items()],
            series={
                str(key): [b.columns, {k: h.to_wire() for k, h in b.latencies.items()}]
                for key, b in self.series.items()
            },
        )
        return merge([raw])


@dataclass
class Snapshot:
    """A recorder's figures as plain data. ``+`` merges exactly; ``to_dict`` ships it."""

    latency: dict[str, list[int]] = field(default_factory=dict)
    dist: dict[str, list[int]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    maxima: dict[str, int] = field(default_factory=dict)
    errors: list[list[Any]] = field(default_factory=list)
    series: dict[str, list[Any]] = field(default_factory=dict)
    levels: dict[str, int] = field(default_factory=dict)

    def __add__(self, other: Snapshot) -> Snapshot:
        return merge([self, other])

    def to_dict(self) -> dict[str, Any]:
        return {
            "latency": self.latency,
            "dist": self.dist,
            "counts": self.counts,
            "maxima": self.maxima,
            "errors": self.errors,
            "series": self.series,
            "levels": self.levels,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Snapshot:
        return cls(
            latency=dict(data.get("latency") or {}),
            dist=dict(data.get("dist") or {}),
            counts=dict(data.get("counts") or {}),
            maxima=dict(data.get("maxima") or {}),
            errors=[list(row) for row in data.get("errors") or ()],
            series=dict(data.get("series") or {}),
            levels=dict(data.get("levels") or {}),
        )

    def histogram(self, name: str) -> Histogram:
        """A latency (µs) or distribution histogram by name; empty if never recorded."""
        wire = self.latency.get(name) or self.dist.get(name) or []
        return Histogram.from_wire(wire)

    def count(self, name: str) -> int:
        return int(self.counts.get(name, 0))

    def level(self, name: str) -> int:
        return int(self.levels.get(name, 0))


def _merge_hists(into: dict[str, Histogram], wires: Mapping[str, list[int]]) -> None:
    for name, wire in wires.items():
        hist = into.get(name)
        if hist is None:
            hist = into[name] = Histogram()
        hist.merge(Histogram.from_wire(wire))


def merge(snapshots: Iterable[Snapshot]) -> Snapshot:
    """The exact sum of snapshots: counts and histogram buckets add, maxima take the max."""
    latency: dict[str, Histogram] = {}
    dist: dict[str, Histogram] = {}
    counts: dict[str, int] = {}
    maxima: dict[str, int] = {}
    levels: dict[str, int] = {}
    errors: dict[tuple[Any, ...], int] = {}
    series: dict[str, tuple[list[int], dict[str, Histogram]]] = {}
    for snap in snapshots:
        _merge_hists(latency, snap.latency)
        _merge_hists(dist, snap.dist)
        for name, n in snap.counts.items():
            counts[name] = counts.get(name, 0) + n
        for name, n in snap.maxima.items():
            maxima[name] = max(maxima.get(name, 0), n)
        for name, n in snap.levels.items():
            levels[name] = levels.get(name, 0) + n
        for row in snap.errors:
            key = tuple(row[:-1])
            errors[key] = errors.get(key, 0) + row[-1]
        for second, (columns, hists) in snap.series.items():
            mine = series.get(second)
            if mine is None:
                mine = series[second] = ([0] * len(SERIES_COLUMNS), {})
            for i, n in enumerate(columns):
                mine[0][i] += n
            _merge_hists(mine[1], hists)
    return Snapshot(
        latency={k: h.to_wire() for k, h in latency.items()},
        dist={k: h.to_wire() for k, h in dist.items()},
        counts=counts,
        maxima=maxima,
        levels=levels,
        errors=[[*key, n] for key, n in sorted(errors.items(), key=lambda kv: repr(kv[0]))],
        series={
            k: [cols, {n: h.to_wire() for n, h in hists.items()}]
            for k, (cols, hists) in sorted(series.items(), key=lambda kv: int(kv[0]))
        },
    )
