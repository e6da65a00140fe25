"""Every figure of ``docs/metrics.md`` for one process, recorded cheaply; pure.

Cost rules (ARCHITECTURE.md): per-event facts are plain integer counts; histograms are
recorded per frame and per turn, never per event. Times come in as ``perf_counter_ns``
values from the edge; latencies are kept in µs, the decode cost in ns.

A ``Recorder`` turns into a ``core.measurement.Measurement``, which merges exactly across
processes. Read figures from a measurement: per-frame facts are folded into counts only when one
is taken. It is the turn tracker's ``TurnRecorder`` (by shape: neither imports the other).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Final

from loadtest.core.figures import (
    DISTRIBUTIONS,
    INITIAL_LATENCIES,
    LATENCIES,
    LEVELS,
    MAXIMA,
    RECONNECTS_PREFIX,
    RECORDED_COUNTS,
    REPLAY_PREFIX,
    RETRIES_PREFIX,
    SERIES_LATENCIES,
    TOOL_CALLS_PREFIX,
    TOOL_TIME_PREFIX,
    WATCH_EVENTS_PREFIX,
)
from loadtest.core.histogram import Histogram
from loadtest.core.measurement import Measurement, keep_timeline, merge, timeline_band
from loadtest.core.replicas import ReplicaTally
from loadtest.core.series import INDEX, NS_PER_S, SecondBucket, second_of
from loadtest.core.turn import ErrorInfo, Turn

NS_PER_US: Final = 1_000

# Each column's index, by name (``core.series`` declares the columns).
_FRAMES, _EVENTS, _BYTES = (INDEX[c] for c in ("frames", "events", "bytes"))
_STARTED, _COMPLETED = (INDEX[c] for c in ("turns_started", "turns_completed"))
_ERRORS, _RETRIES = (INDEX[c] for c in ("errors", "retries"))
_ACTIVE, _RSS = (INDEX[c] for c in ("active_streams", "generator_rss_kb"))

#: Distinct error rows kept; further distinct ones are folded into one "other" row.
MAX_ERROR_ROWS: Final = 200

ErrorKey = tuple[str, str | None, str | None, int | None, bool | None, str]
#: Distinct tool names kept apart per process; further ones are counted as ``other``.
MAX_TOOL_NAMES: Final = 64


class Recorder:
    """Collects one process's measurements. Pure: no clock, no I/O."""

    __slots__ = (
        "_bucket",
        "_decode_time",
        "_events_per_frame",
        "_frame_bytes",
        "_inter_frame_gap",
        "_parts_per_frame",
        "_run_events_per_frame",
        "_run_frame_bytes",
        "bucket_end",
        "bucket_start",
        "counts",
        "dist",
        "errors",
        "frame_gaps",
        "latency",
        "levels",
        "maxima",
        "one_event_bytes",
        "origin_epoch_s",
        "origin_ns",
        "replicas",
        "series",
        "timelines",
        "tool_names",
        "turn_slos",
    )

    def __init__(self, origin_ns: int = 0, origin_epoch_s: float = 0.0) -> None:
        #: ``origin_ns`` (monotonic) happened at ``origin_epoch_s`` (wall): buckets are keyed
        #: by wall-clock second, so buckets of different processes line up when merged.
        self.origin_ns = origin_ns
        self.origin_epoch_s = origin_epoch_s
        self.latency: dict[str, Histogram] = {name: Histogram() for name in LATENCIES}
        self.dist: dict[str, Histogram] = {name: Histogram() for name in DISTRIBUTIONS}
        self.counts: dict[str, int] = dict.fromkeys(RECORDED_COUNTS, 0)
        self.maxima: dict[str, int] = dict.fromkeys(MAXIMA, 0)
        self.levels: dict[str, int] = dict.fromkeys(LEVELS, 0)
        self.errors: dict[ErrorKey, int] = {}
        self.series: dict[int, SecondBucket] = {}
        #: Per-turn SLO bounds in µs by latency name; a turn within all counts as goodput.
        self.turn_slos: dict[str, int] = {}
        #: The current second's bucket and its bounds [start, end): checked inline per frame
        #: (here, and by the meter's fast path: ``turn.PartFrames``).
        self.bucket_start = 0
        self.bucket_end = 0
        self._bucket = SecondBucket()
        # Per-frame facts are plain tallies (an inline ``tally[value] += 1``: a defaultdict
        # is cheaper per frame than ``dict.get``, no call): the current second's frames by
        # event count and by size. When the second ends they become its bucket's columns and
        # join the run's tallies, which become histograms, exactly, at measurement time. The
        # frame, event and byte counts are the tallies' sums.
        self._events_per_frame: defaultdict[int, int] = defaultdict(int)
        self._frame_bytes: defaultdict[int, int] = defaultdict(int)
        self._run_events_per_frame: dict[int, int] = {}
        self._run_frame_bytes: dict[int, int] = {}
        self._parts_per_frame: defaultdict[int, int] = defaultdict(int)
        #: The meter's fast path's share of those tallies (``TurnTracker.one_part`` appends to
        #: it inline): the size of each of this second's frames of one event, each one part
        #: of a turn. When the second ends they are counted (``Counter``, in C) into the
        #: tallies above, so every figure reads as if each such frame had gone through
        #: ``frame`` and ``part_frame``. An append and its share of the count cost less than
        #: a tally's ``+= 1`` (two dict operations and a new int): 250 fewer instructions a
        #: frame for the two lists; each holds at most a second of frames.
        self.one_event_bytes: list[int] = []
        self._inter_frame_gap = self.latency["inter_frame_gap"]
        #: This second's gaps between a turn's part frames (µs), one per frame (an append,
        #: here and by the fast path), counted into the histogram each second.
        self.frame_gaps: list[int] = []
        self._decode_time = self.dist["decode_time_ns"]
        #: Per target replica, when the run has several (index into the run's replicas).
        self.replicas: dict[int, ReplicaTally] = {}
        #: A completed turn's timeline per band of durations (``measurement.TIMELINE_BAND``).
        self.timelines: dict[str, list[Any]] = {}
        #: The tool names kept apart so far (``MAX_TOOL_NAMES``).
        self.tool_names: set[str] = set()

    # ------------------------------------------------------------ time series

    def bucket(self, t: int) -> SecondBucket:
        """The 1-second bucket holding monotonic time ``t``."""
        if self.bucket_start <= t < self.bucket_end:
            return self._bucket
        self._settle_frames()
        key, self.bucket_end = second_of(t, self.origin_ns, self.origin_epoch_s)
        self.bucket_start = self.bucket_end - NS_PER_S
        bucket = self.series.get(key)
        if bucket is None:
            bucket = self.series[key] = SecondBucket()
        self._bucket = bucket
        return bucket

    def active_streams(self, t: int, count: int) -> None:
        """A sample of the streams this process holds open (the latest per second wins)."""
        self.bucket(t).columns[_ACTIVE] = count
        self.levels["open_streams"] = count

    # ------------------------------------------------------------ stream frames

    def frame(self, t: int, nbytes: int, nevents: int) -> None:
        """One data frame: its size and event count, in its second."""
        if not self.bucket_start <= t < self.bucket_end:
            self.bucket(t)
        self._events_per_frame[nevents] += 1
        self._frame_bytes[nbytes] += 1

    def _settle_frames(self) -> None:
        """The current second's frame tallies into its bucket's columns and the run's."""
        one = self.one_event_bytes
        if one:
            frames = len(one)
            self._events_per_frame[1] += frames
            self._parts_per_frame[1] += frames
            by_size = self._frame_bytes
            for nbytes, n in Counter(one).items():
                by_size[nbytes] += n
            one.clear()
        gaps = self.frame_gaps
        if gaps:
            record_many = self._inter_frame_gap.record_many
            for gap, n in Counter(gaps).items():
                record_many(gap, n)
            gaps.clear()
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
        self._events_per_frame = defaultdict(int)
        self._frame_bytes = defaultdict(int)

    def count(self, name: str, n: int = 1) -> None:
        """``n`` more of a declared count figure (an undeclared name is a KeyError)."""
        self.counts[name] += n

    def count_under(self, prefix: str, label: str, n: int = 1) -> None:
        """``n`` more of a count broken down by label (a ``figures.COUNT_PREFIXES`` prefix)."""
        key = prefix + label
        self.counts[key] = self.counts.get(key, 0) + n

    def ping(self) -> None:
        self.counts["pings"] += 1

    def decode_error(self, reason: str, t: int) -> None:
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
        self._parts_per_frame[parts] += 1
        last = turn.last_part_frame_at
        if last is not None:
            self.frame_gaps.append((t - last) // NS_PER_US)

    def retry_event(self, delay_ms: int | None, kind: str | None, t: int) -> None:
        self.counts["retry_events"] += 1
        self.count_under(RETRIES_PREFIX, kind or "unknown")
        if delay_ms is not None:
            self.latency["retry_delay"].record(delay_ms * 1000)
        self.bucket(t).columns[_RETRIES] += 1

    def preview_reset(self) -> None:
        """A live era-D ``preview_reset`` (the one in every connect snapshot is not one)."""
        self.counts["preview_resets"] += 1

    def parts_discarded(self, n: int) -> None:
        self.counts["parts_discarded"] += n

    def integrity(self, name: str, n: int) -> None:
        """``n`` stream integrity errors of one kind (an ``INTEGRITY`` figure's name)."""
        self.counts[name] += n

    def watch_event(self, kind: str) -> None:
        """One ``/chats/watch`` event; by kind under ``watch_events:<kind>``."""
        self.counts["watch_events"] += 1
        self.count_under(WATCH_EVENTS_PREFIX, kind)

    def watch_lag(self, ns: int) -> None:
        """Watch arrival - stream arrival: positive into watch_lag, negative into watch_lead."""
        if ns >= 0:
            self.latency["watch_lag"].record(ns // NS_PER_US)
        else:
            self.latency["watch_lead"].record(-ns // NS_PER_US)

    def message_update(self) -> None:
        """A message re-sent live that reads differently (an update; an identical copy is not one)."""
        self.counts["message_updates"] += 1

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

    def tool_results_posted(self, ns: int) -> None:
        """One POST of tool results (an ``action_required`` answered) and its latency."""
        self.counts["tool_results_posted"] += 1
        self.request("tool_results_latency", ns)

    def replica(self, index: int) -> ReplicaTally:
        """Replica ``index``'s tally (made on first use)."""
        tally = self.replicas.get(index)
        if tally is None:
            tally = self.replicas[index] = ReplicaTally()
        return tally

    def reconnected(self, cause: str, ns: int) -> None:
        """A dropped stream is back: ``cause`` (a close code, or ``error``) and the time from
        the drop to the first frame on the new socket."""
        self.counts["reconnects"] += 1
        self.count_under(RECONNECTS_PREFIX, cause)
        self.latency["reconnect_time"].record(ns // NS_PER_US)

    def cross_replica_lag(self, ns: int) -> None:
        """A watcher's arrival on another replica - the driver's: lag, or lead if negative."""
        if ns >= 0:
            self.latency["cross_replica_lag"].record(ns // NS_PER_US)
        else:
            self.latency["cross_replica_lead"].record(-ns // NS_PER_US)

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
        if turn.checked:
            counts["turns_checked"] += 1
        if turn.action_required_at is not None:
            counts["turns_requires_action"] += 1
        self.dist["retries_per_turn"].record(turn.retries)
        if turn.retries:
            counts["turns_retried"] += 1
        replica = self.replica(turn.replica) if turn.replica is not None else None
        self._agent(turn, outcome == "failed")
        if outcome == "failed":
            counts["turns_failed"] += 1
            if replica is not None:
                replica.error()
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
        if replica is not None and turn.first_output_at is not None:
            replica.first_output((turn.first_output_at - turn.origin) // NS_PER_US)
        self._turn_latencies(turn, bucket)

    def _agent(self, turn: Turn, failed: bool) -> None:
        """An ended turn's steps and tools (docs/metrics.md, "Agent steps, tools and
        sub-agents"); a failed turn's tools count too, its step distributions do not."""
        log = turn.agent
        counts, latency = self.counts, self.latency
        calls = 0
        for name, n in log.tool_calls.items():
            calls += n
            self.count_under(TOOL_CALLS_PREFIX, self._tool_name(name), n)
        counts["tool_calls"] += calls
        counts["tool_errors"] += log.tool_errors
        if log.step_ttfts:
            hist = latency["step_time_to_first_output"]
            for ns in log.step_ttfts:
                hist.record(ns // NS_PER_US)
        if log.tool_times:
            every = latency["tool_time"]
            for name, ns in log.tool_times:
                us = ns // NS_PER_US
                every.record(us)
                key = TOOL_TIME_PREFIX + self._tool_name(name)
                by_name = latency.get(key)
                if by_name is None:
                    by_name = latency[key] = Histogram()
                by_name.record(us)
        if failed:
            return
        self.dist["steps_per_turn"].record(log.steps)
        self.dist["tool_calls_per_turn"].record(calls)
        if turn.outcome == "completed" and log.timeline and turn.terminal_live:
            self._keep_timeline(turn, log.steps)

    def _tool_name(self, name: str) -> str:
        """``name``, or ``other`` once ``MAX_TOOL_NAMES`` others are kept apart."""
        names = self.tool_names
        if name in names:
            return name
        if len(names) >= MAX_TOOL_NAMES:
            return "other"
        names.add(name)
        return name

    def _keep_timeline(self, turn: Turn, steps: int) -> None:
        """The turn's timeline, kept if the shortest of its band of durations so far."""
        assert turn.terminal_at is not None
        t0 = turn.t0
        duration = max(1, (turn.terminal_at - t0) // NS_PER_US)
        kept = self.timelines.get(timeline_band(duration))
        if kept is not None and kept[0] < duration:
            return
        segments = [
            [kind, label, (start - t0) // NS_PER_US, (end - t0) // NS_PER_US]
            for kind, label, start, end in turn.agent.timeline
        ]
        keep_timeline(self.timelines, [duration, steps, segments])

    def _turn_latencies(self, turn: Turn, bucket: SecondBucket) -> None:
        latency = self.latency
        observed: dict[str, int] = {}
        for name, at in (
            ("time_to_running", turn.running_at),
            ("time_to_first_output", turn.first_output_at),
            ("time_to_first_kept_output", turn.first_kept_output_at),
            ("time_to_terminal_status", turn.terminal_at if turn.terminal_live else None),
            ("time_to_action_required", turn.action_required_at),
        ):
            if at is None:
                continue
            us = (at - turn.origin) // NS_PER_US
            latency[name].record(us)
            observed[name] = us
            if turn.initial and name in INITIAL_LATENCIES:
                latency[name + "_initial"].record(us)
            if turn.intended is not None:
                latency[name + "_uncorrected"].record((at - turn.t0) // NS_PER_US)
            if name in SERIES_LATENCIES:
                bucket.latency(name, us)
        if turn.first_output_at is None:
            # Its output (if any) came before the stream connected, or the turn had none:
            # counted, so TTFT's count plus this equals turns_completed.
            self.counts["turns_no_live_output"] += 1
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

    # ------------------------------------------------------------ a replayed trace

    def replay_planned(self, chats: int, turns: int) -> None:
        """This process's share of a trace: ``chats`` users' chats of ``turns`` turns."""
        self.count_under(REPLAY_PREFIX, "chats_planned", chats)
        self.count_under(REPLAY_PREFIX, "turns_planned", turns)

    def replay_chat(self, started: bool, offset_ns: int = 0) -> None:
        """A planned chat was created (``offset_ns`` after the replay began), or ended."""
        self.count_under(REPLAY_PREFIX, "chats_started" if started else "chats_ended")
        if started:
            ms = offset_ns // 1_000_000
            if ms > self.maxima["replay_last_start_ms"]:
                self.maxima["replay_last_start_ms"] = ms

    def replay_turn(self, recorded_s: float, replayed_ns: int) -> None:
        """A completed replayed turn against the trace's duration of it."""
        if recorded_s > 0:
            ratio = replayed_ns / (recorded_s * NS_PER_S)
            self.dist["replay_duration_ratio"].record(int(ratio * 1000))

    def conversation(self, ns: int) -> None:
        self.latency["conversation_duration"].record(ns // NS_PER_US)

    # ------------------------------------------------------------ measurement and merge

    def cpu_sample(self, cpu_percent: float) -> None:
        """One sample of this process's CPU use over the last second."""
        permille = int(cpu_percent * 10)
        if permille > self.maxima["cpu_permille_max"]:
            self.maxima["cpu_permille_max"] = permille

    def memory_sample(self, t: int, rss_kb: int) -> None:
        """This process's resident memory at ``t`` (the latest per second wins)."""
        self.bucket(t).columns[_RSS] = rss_kb

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
        for name, tally in (
            ("events_per_frame", self._run_events_per_frame),
            ("frame_bytes", self._run_frame_bytes),
            ("parts_per_frame", self._parts_per_frame),
        ):
            hist = self.dist[name] = Histogram()
            for value, n in tally.items():
                hist.record_many(value, n)

    def measurement(self, *, series: bool = True, series_from: int = 0) -> Measurement:
        """This recorder's figures, in the canonical form ``merge`` produces; without the
        time series when not ``series`` (a live view's: the series costs the run's length),
        or with only its seconds from ``series_from`` (Unix seconds: a worker's report)."""
        self._fold_tallies()
        counts = dict(self.counts)
        counts["parts"] = sum(n * k for n, k in self._parts_per_frame.items())
        self.latency["inter_part_gap"] = self._inter_part_gap(counts["parts"])
        latency = {k: h.to_wire() for k, h in self.latency.items() if h.count}
        for index, tally in self.replicas.items():
            tally.to_wire(index, counts, latency)
        raw = Measurement(
            latency=latency,
            dist={k: h.to_wire() for k, h in self.dist.items() if h.count},
            counts={k: v for k, v in counts.items() if v},
            maxima={k: v for k, v in self.maxima.items() if v},
            levels={k: v for k, v in self.levels.items() if v},
            errors=[[*key, n] for key, n in self.errors.items()],
            timelines=dict(self.timelines),
            series={str(key): b.to_wire() for key, b in self.series.items() if key >= series_from}
            if series
            else {},
        )
        return merge([raw])
