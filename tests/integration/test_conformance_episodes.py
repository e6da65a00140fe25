"""Spec §9.2 against the running simulator: ``history_version`` rises once per committed
transaction (skipping numbers); ``generation_attempt`` is 1 for an episode's first attempt,
+1 per retry, 1 again after every commit; ``retry`` comes when the retry state is recorded,
``preview_reset`` only when the next attempt starts, after the backoff, in a frame of its own."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import orjson

from tests.integration.conftest import EraSim

#: Two failed attempts (backoffs of 1 s and 2 s, scaled to 150 and 300 ms), each streaming a
#: little first; then a tool round trip, so one turn commits several times.
CONFIG = {
    "error_rate": 1.0,
    "error_kind": "overloaded",
    "error_retries": 2,
    "partial_output_ratio": 1.0,
    "time_scale": 0.15,
    "tool_steps": 1,
    "parts_per_turn": 4,
}


def _frames(sim: EraSim, chat_id: str) -> list[tuple[float, list[dict[str, Any]]]]:
    """Every frame of one turn on a stream opened before it, with its arrival (wall) time."""
    frames: list[tuple[float, list[dict[str, Any]]]] = []
    with sim.open(chat_id) as stream:
        stream.until_status("waiting")
        sim.post(chat_id, "go")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            events = orjson.loads(stream.socket.recv(timeout=20))
            frames.append((time.time(), events))
            if any(e["type"] == "status" and e["status"]["status"] == "waiting" for e in events):
                return frames
    raise AssertionError("the turn did not end")


def test_episode_numbering_and_the_retry_preview_reset_order(era_d: EraSim) -> None:
    sim = era_d
    chat = sim.create_chat()
    sim.wait_idle(chat["id"])
    sim.patch(**CONFIG)
    frames = _frames(sim, chat["id"])
    events = [event for _, events in frames for event in events]
    # The episodes in the order their parts came, each numbered 1, 2, 3 ... from its start.
    episodes: list[tuple[int, int]] = []
    seqs: dict[tuple[int, int], list[int]] = {}
    for event in events:
        if event["type"] == "message_part":
            body = event["message_part"]
            key = (body["history_version"], body["generation_attempt"])
            if key not in seqs:
                episodes.append(key)
            seqs.setdefault(key, []).append(body["seq"])
    assert all(numbers == list(range(1, len(numbers) + 1)) for numbers in seqs.values()), seqs
    # The first step: attempts 1, 2 (the retries) and 3 (the one that worked), one history.
    first = episodes[0][0]
    assert episodes[:3] == [(first, 1), (first, 2), (first, 3)], episodes
    # The first step ends in the tool call (section 10.4); then every commit starts a new
    # history at attempt 1: the tool batch and the answer.
    later = episodes[3:]
    assert [attempt for _, attempt in later] == [1, 1], episodes
    histories = [history for history, _ in episodes[2:]]
    assert histories == sorted(set(histories)), histories
    # Once per transaction, not per message: each retry's recorded attempt (and its retry
    # state) were transactions too, so the commit after them skipped numbers.
    assert histories[1] - histories[0] > 1, histories
    retries = [
        (index, event)
        for index, (_, frame) in enumerate(frames)
        for event in frame
        if event["type"] == "retry"
    ]
    assert len(retries) == 2
    for index, retry in retries:
        at, frame = frames[index]
        assert "preview_reset" not in [e["type"] for e in frame]  # not sent with the retry
        # The next attempt's preview_reset: after the backoff, alone in its frame, and no
        # part of the next attempt before it.
        later_frames = frames[index + 1 :]
        first_reset = next(
            n
            for n, (_, f) in enumerate(later_frames)
            if any(e["type"] == "preview_reset" for e in f)
        )
        reset_at, reset_frame = later_frames[first_reset]
        assert [e["type"] for e in reset_frame] == ["preview_reset"]
        # The retry says when the next attempt starts; its preview_reset is not sent before.
        retrying_at = datetime.fromisoformat(retry["retry"]["retrying_at"]).timestamp()
        assert reset_at >= retrying_at, (reset_at - at, retrying_at - at)
        between = [e["type"] for _, f in later_frames[:first_reset] for e in f]
        assert "message_part" not in between
