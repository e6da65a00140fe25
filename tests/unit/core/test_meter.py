"""Fuzz: any frame, in any tracker state, is measured or counted as a decode error, never an
exception. Decoder, meter and tracker are driven together, as a stream reader drives them."""

from __future__ import annotations

import json

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from loadtest.core.meter import TRACKER_FAULT, StreamMeter
from loadtest.core.recorder import Recorder
from loadtest.core.tracker import TurnTracker
from loadtest.core.turn import ErrorInfo


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
