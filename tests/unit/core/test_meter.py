"""Fuzz: any frame, in any tracker state, is measured or counted as a decode error, never an
exception. Decoder, meter and tracker are driven together, as a stream reader drives them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from loadtest.core.decode import PING, decode_frame
from loadtest.core.meter import TRACKER_FAULT, StreamMeter
from loadtest.core.recorder import Recorder
from loadtest.core.tracker import TurnTracker
from loadtest.core.turn import ErrorInfo, Turn


def dumps(value: object) -> bytes:
    """JSON as a server might send it: integers of any size (orjson writes only 64-bit)."""
    return json.dumps(value).encode()


#: Any JSON value, wrongly typed fields included.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
#: What the tracker reads, each field either well-formed or any JSON value at all.
messages = st.fixed_dictionaries(
    {},
    optional={
        "id": st.integers(0, 50) | json_values,
        "role": st.sampled_from(["user", "assistant"]) | json_values,
        "usage": st.fixed_dictionaries(
            {}, optional={"output_tokens": st.integers(-5, 2**65) | json_values}
        )
        | json_values,
    },
)
events = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("message_part")}, optional={"message_part": json_values}
    ),
    st.fixed_dictionaries(
        {"type": st.just("message")}, optional={"message": messages | json_values}
    ),
    st.fixed_dictionaries(
        {"type": st.just("status")},
        optional={
            "status": st.fixed_dictionaries(
                {},
                optional={
                    "status": st.sampled_from(["running", "waiting", "error", "pending"])
                    | json_values
                },
            )
            | json_values
        },
    ),
    st.fixed_dictionaries(
        {"type": st.just("retry")},
        optional={
            "retry": st.fixed_dictionaries(
                {}, optional={"delay_ms": st.integers(-5, 2**65) | json_values}
            )
            | json_values
        },
    ),
    st.fixed_dictionaries(
        {"type": st.just("queue_update")}, optional={"queued_messages": json_values}
    ),
    st.fixed_dictionaries({"type": st.just("error")}, optional={"error": json_values}),
    st.fixed_dictionaries({"type": st.text(max_size=12)}),
)
frames = st.one_of(
    st.lists(events, max_size=6).map(dumps),
    st.lists(events, max_size=4).map(lambda batch: dumps({"type": "data", "data": batch})),
    json_values.map(lambda v: dumps({"type": "error", "data": v})),
    json_values.map(dumps),
    st.binary(max_size=20),
)
#: Between frames, the user's side changes the tracker's state at random.
actions = st.sampled_from(["start", "connected", "interrupt", "expire", "fail", "abandon", "none"])


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(actions, frames), min_size=1, max_size=25))
def test_no_frame_in_any_state_raises_and_every_turn_is_accounted(
    steps: list[tuple[str, bytes]],
) -> None:
    recorder = Recorder()
    tracker = TurnTracker(recorder)
    meter = StreamMeter(recorder, tracker)
    t = 0
    for action, frame in steps:
        t += 1_000_000
        if action == "start":
            tracker.start(t)
        elif action == "connected":
            tracker.connected()
        elif action == "interrupt":
            tracker.interrupt_requested()
        elif action == "expire":
            tracker.expire(t, 500_000)
        elif action == "fail":
            tracker.fail(ErrorInfo("stream_closed", "closed 1006"), t)
        elif action == "abandon":
            tracker.abandon(t)
        meter.feed(frame, t)  # no exception may escape the decoder, meter or tracker
    tracker.abandon(t + 1)
    measurement = recorder.measurement()
    counts = measurement.counts
    ended = sum(counts.get(k, 0) for k in ("turns_completed", "turns_failed", "turns_unfinished"))
    assert counts.get("turns_started", 0) == ended
    # Every wrong type was caught by a named check, not by the meter's last-resort guard.
    assert not [row for row in measurement.errors if str(row[5]).startswith(TRACKER_FAULT)]
    assert orjson.dumps(measurement.to_dict())  # and it still ships and reports


# ---------------------------------------------------------------- the fast path


def _part(text: object, seq: int | None, episode: tuple[int, int]) -> dict[str, object]:
    body: dict[str, object] = {"role": "assistant", "part": {"type": "text", "text": text}}
    if seq is not None:
        body.update(seq=seq, history_version=episode[0], generation_attempt=episode[1])
    return {"type": "message_part", "chat_id": "c", "message_part": body}


#: What a stream's next frame is: mostly one text part (the fast path's frame, numbered in
#: order or not, and its near misses), among everything that makes it step aside.
frame_kinds = st.sampled_from(
    ["text"] * 12
    + ["numbered"] * 12
    + ["seq_skip", "seq_repeat", "new_episode", "other_episode", "reasoning", "tool_call"]
    + ["tool_result"]
    + ["no_text", "text_not_str", "body_not_dict", "part_not_dict", "two_parts", "user"]
    + ["assistant"] * 2
    + ["preview_reset"] * 3
    + ["assistant_wrong", "running", "waiting", "ping"]
    + ["garbage", "retry"]
)
#: Gaps between frames: microseconds apart, or across a second (a new series bucket).
gaps_ns = st.sampled_from([1_000, 1_500, 7_000, 250_000, 1_100_000_000])


class _Stream:
    """Makes one stream's frames: ids, seqs and the step's text so far, as a server would."""

    def __init__(self) -> None:
        self.message_id = 0
        self.seq = 0
        self.episode = (1, 1)
        self.numbered = False
        self.step: list[str] = []

    def frame(self, kind: str, n: int) -> bytes:
        text = f"w{n} "
        if kind in ("text", "reasoning", "numbered", "seq_skip", "seq_repeat", "new_episode"):
            if kind == "new_episode":
                self.episode = (self.episode[0], self.episode[1] + 1)
                self.seq = 0
            self.numbered = self.numbered or kind != "text"
            self.seq += {"seq_skip": 2, "seq_repeat": 0}.get(kind, 1)
            event = _part(text, self.seq if self.numbered else None, self.episode)
            if kind == "reasoning":
                event["message_part"]["part"]["type"] = "reasoning"  # type: ignore[index]
            self.step.append(text)
            return dumps([event])
        if kind in ("tool_call", "tool_result", "no_text"):
            part = {"type": kind.replace("_", "-"), "tool_call_id": f"call{n % 3}"}
            if kind == "no_text":
                part = {"type": "text"}
            return dumps([{"type": "message_part", "message_part": {"part": part}}])
        if kind == "other_episode":  # the next seq, of another episode
            self.seq += 1
            return dumps([_part(text, self.seq, (self.episode[0], self.episode[1] + 1))])
        if kind == "text_not_str":
            return dumps([_part(n, None, self.episode)])
        if kind == "body_not_dict":
            return dumps([{"type": "message_part", "message_part": [n]}])
        if kind == "part_not_dict":
            return dumps([{"type": "message_part", "message_part": {"part": "x"}}])
        if kind == "two_parts":
            self.step += [text, text]
            return dumps([_part(text, None, self.episode), _part(text, None, self.episode)])
        if kind in ("user", "assistant", "assistant_wrong"):
            self.message_id += 1
            body: dict[str, object] = {"id": self.message_id, "role": "user"}
            if kind != "user":
                said = "".join(self.step) + ("!" if kind == "assistant_wrong" else "")
                body = {
                    "id": self.message_id,
                    "role": "assistant",
                    "content": [{"type": "text", "text": said}],
                }
            self.step = []
            return dumps([{"type": "message", "message": body}])
        if kind in ("running", "waiting"):
            return dumps([{"type": "status", "status": {"status": kind}}])
        if kind == "preview_reset":
            self.step, self.seq = [], 0
            self.episode = (self.message_id + 1, 1)
            return dumps([{"type": "preview_reset"}])
        if kind == "retry":
            return dumps([{"type": "retry", "retry": {"attempt": 1, "delay_ms": 5}}])
        if kind == "ping":
            return dumps({"type": "ping"})
        return b"{not json"


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["start", "connected"] + ["none"] * 10), frame_kinds, gaps_ns),
        min_size=1,
        max_size=60,
    )
)
def test_the_fast_path_measures_what_the_general_path_measures(
    steps: list[tuple[str, str, int]],
) -> None:
    """The meter's fast path for a frame of one text part against the general path (the
    recorder's ``frame`` and the tracker's ``feed``, as the meter called them before): the
    same measurement, the same turns, the same replica tally, frame for frame."""
    fast_recorder, slow_recorder = Recorder(0, 0.0), Recorder(0, 0.0)
    fast, slow = TurnTracker(fast_recorder), TurnTracker(slow_recorder)
    meter = StreamMeter(fast_recorder, fast)
    meter.replica, slow_replica = fast_recorder.replica(0), slow_recorder.replica(0)
    stream = _Stream()
    fast_ended, slow_ended = [], []
    t = 0
    for n, (action, kind, gap) in enumerate([("start", "user", 1), ("none", "running", 1), *steps]):
        t += gap
        for tracker in (fast, slow):
            if action == "start":
                tracker.start(t)
            elif action == "connected":
                tracker.connected()
        frame = stream.frame(kind, n)
        fast_ended += meter.feed(frame, t)
        decoded = decode_frame(frame)
        if type(decoded) is list:
            slow_recorder.frame(t, len(frame), len(decoded))
            slow_replica.frame(len(decoded))
            slow_ended += slow.feed(decoded, t)
        elif decoded is PING:
            slow_recorder.ping()
        else:
            slow_recorder.decode_error(decoded.reason, t)  # type: ignore[union-attr]
            slow_replica.error()
    fast_ended += fast.abandon(t + 1)
    slow_ended += slow.abandon(t + 1)
    assert fast_ended == slow_ended
    assert fast_recorder.measurement() == slow_recorder.measurement()
    assert fast.active == slow.active and fast.integrity.text_known == slow.integrity.text_known


def test_the_fast_path_takes_the_common_frame() -> None:
    """A running turn's text parts, numbered or not, go the fast path (the general one
    would call ``feed``), and are measured."""

    class Counted(TurnTracker):
        fed = 0

        def feed(self, events: list[dict[str, Any]], t: int) -> Sequence[Turn]:
            self.fed += 1
            return super().feed(events, t)

    recorder = Recorder(0, 0.0)
    tracker = Counted(recorder)
    meter = StreamMeter(recorder, tracker)
    tracker.start(0)
    meter.feed(dumps([{"type": "message", "message": {"id": 1, "role": "user"}}]), 1)
    meter.feed(dumps([{"type": "status", "status": {"status": "running"}}]), 2)
    meter.feed(dumps([_part("a", None, (1, 1))]), 3)  # the step's first part: feed's
    assert tracker.fed == 3
    meter.feed(dumps([_part("b", None, (1, 1))]), 1_000)
    meter.feed(dumps([_part("c", 1, (1, 1))]), 3_000)  # numbered from here on
    meter.feed(dumps([_part("d", 2, (1, 1))]), 4_000)
    assert tracker.fed == 4  # the first numbered part opens its episode: feed's
    measured = recorder.measurement()
    assert measured.count("frames") == 6 and measured.count("parts") == 4
    assert tracker.active is not None and tracker.active.parts == 4


def test_the_meter_hands_back_control_after_a_frame_with_kept_statuses() -> None:
    def frame(*events: dict[str, Any]) -> tuple[bytes, int]:
        return orjson.dumps(list(events)), 0

    snapshot = frame({"type": "status", "chat_id": "c", "status": {"status": "running"}})
    running = frame({"type": "status", "chat_id": "c", "status": {"status": "running"}})
    delta = frame(
        {
            "type": "message_part",
            "chat_id": "c",
            "message_part": {"part": {"type": "text", "text": "x"}},
        }
    )
    for keep in (True, False):
        recorder = Recorder()
        tracker = TurnTracker(recorder, keep_statuses=keep)
        tracker.start(0)
        tracker.connected()
        handed = [
            (ended, tracker.take_statuses())
            for ended in StreamMeter(recorder, tracker).read([snapshot, delta, running, delta])
        ]
        # Once, after the live status's frame (the snapshot's status is not live).
        assert handed == ([([], [("running", 0)])] if keep else [])
