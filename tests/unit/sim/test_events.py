"""The simulator's stream events per era: episode numbering as chatd keeps it, the hand-built
text delta equal to the model-built one, each era's frame envelope and error shapes."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from loadtest.core.decode import decode_frame
from loadtest.protocol.eras import Era
from loadtest.protocol.events import MESSAGE_PART, PREVIEW_RESET, RETRY
from loadtest.protocol.models import ChatMessagePart
from loadtest.sim.events import Episode, Events, Failure

AT = datetime(2026, 12, 1, tzinfo=UTC)


def failure() -> Failure:
    return Failure("rate_limit", "Too many requests.", 429, True, "openai", "slow down", 2.0)


def test_an_episode_numbers_parts_from_one_and_a_new_attempt_starts_again() -> None:
    episode = Episode()
    episode.transaction()
    episode.history_changed()
    episode.attempt_recorded()
    assert episode.key == (1, 1)
    events = Events(Era.D)
    seqs = [events.text_part("c", "text", "x", episode)[MESSAGE_PART]["seq"] for _ in range(3)]
    assert seqs == [1, 2, 3]
    episode.attempt_recorded()
    assert episode.key == (1, 2)
    assert events.text_part("c", "text", "y", episode)[MESSAGE_PART]["seq"] == 1


def test_history_takes_the_transactions_snapshot_and_resets_the_attempt() -> None:
    episode = Episode()
    for _ in range(3):
        episode.transaction()
    episode.attempt_recorded()
    episode.history_changed()
    assert episode.key == (3, 0)


def test_the_hand_built_text_delta_equals_the_model_built_part() -> None:
    for era in Era:
        events = Events(era)
        episode = Episode()
        episode.attempt_recorded()
        fast = events.text_part("c", "text", "hello", episode)
        twin = Episode()
        twin.attempt_recorded()
        built = events.part("c", ChatMessagePart(type="text", text="hello"), "assistant", twin)
        assert fast == built, era


def test_only_era_d_numbers_parts() -> None:
    for era in (Era.A, Era.B, Era.C):
        part = Events(era).text_part("c", "text", "x", Episode())[MESSAGE_PART]
        assert "seq" not in part and "history_version" not in part
    bursts = Events(Era.D).text_parts("c", [("text", "a"), ("reasoning", "b")], Episode())
    assert [p[MESSAGE_PART]["seq"] for p in bursts] == [1, 2]


def test_each_eras_frame_decodes_to_the_events_it_carries() -> None:
    for era in Era:
        events = Events(era)
        sent = [events.text_part("c", "text", str(i), None) for i in range(3)]
        sent.append(events.preview_reset("c"))
        frame = events.frame([orjson.dumps(e) for e in sent])
        assert decode_frame(frame) == sent, era
        assert frame.startswith(b'{"type":"data"') is events.envelope


def test_the_retry_event_carries_the_kind_after_the_seed_era() -> None:
    seed = Events(Era.A).retry("c", 1, 2000, failure(), AT)[RETRY]
    assert "kind" not in seed and seed["error"] == "Too many requests." and seed["delay_ms"] == 2000
    later = Events(Era.D).retry("c", 1, 2000, failure(), AT)[RETRY]
    assert (later["kind"], later["provider"], later["status_code"]) == ("rate_limit", "openai", 429)


def test_errors_grow_with_the_era_and_omit_what_is_empty() -> None:
    assert Events(Era.A).error("c", failure())["error"] == {"message": "Too many requests."}
    full = Events(Era.D).error("c", failure())["error"]
    assert full["detail"] == "slow down" and full["retryable"] is True
    bare = Failure("generic", "boom", 0, False, "", "")
    assert Events(Era.D).error("c", bare)["error"] == {
        "message": "boom",
        "retryable": False,
        "kind": "generic",
    }


def test_era_as_error_frame_is_coders_response_envelope() -> None:
    frame = orjson.loads(Events(Era.A).error_frame("Chat not found.", "no such chat"))
    assert frame == {
        "type": "error",
        "data": {"message": "Chat not found.", "detail": "no such chat"},
    }
    assert Events(Era.D).preview_reset("c")["type"] == PREVIEW_RESET
