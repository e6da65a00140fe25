"""Stream integrity on its own: seq numbering, a step's text against its commit, fingerprints."""

from __future__ import annotations

from typing import Any

from loadtest.core.integrity import (
    FOLD_TEXTS,
    MALFORMED,
    NOT_TEXT,
    TEXT,
    StreamIntegrity,
)
from loadtest.core.replicas import ReplicaTally
from loadtest.core.turn import Turn
from tests.unit.events import episode_part, part


class Tally:
    """A recorder of what integrity reports, nothing more."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.errors: list[str] = []
        self.updates = 0

    def integrity(self, name: str, n: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def decode_error(self, reason: str, t: int) -> None:
        self.errors.append(reason)

    def message_update(self) -> None:
        self.updates += 1


def checked() -> tuple[Tally, StreamIntegrity, Turn]:
    tally = Tally()
    integrity = StreamIntegrity(tally)
    integrity.preview_reset(None)  # a snapshot's: what follows is a step seen whole
    return tally, integrity, Turn(t0=0)


def assistant(text: str) -> dict[str, Any]:
    return {"id": 2, "role": "assistant", "content": [{"type": "text", "text": text}]}


def test_parts_numbered_in_order_pass_and_the_turn_is_checked() -> None:
    tally, integrity, turn = checked()
    assert (
        integrity.parts([episode_part("a", 2, 1, 1), episode_part("b", 2, 1, 2)], turn, 1) == TEXT
    )
    assert integrity.parts([episode_part("c", 2, 1, 3)], turn, 2) == TEXT
    integrity.commit(turn, assistant("abc"))
    assert tally.counts == {} and turn.checked and turn.integrity_errors == {}


def test_a_gap_a_duplicate_and_a_late_part_are_each_counted_once() -> None:
    tally, integrity, turn = checked()
    integrity.parts([episode_part("a", 2, 1, 1)], turn, 1)
    integrity.parts([episode_part("c", 2, 1, 3)], turn, 2)  # 2 is missing for now
    integrity.parts([episode_part("c", 2, 1, 3)], turn, 3)  # a duplicate
    integrity.parts([episode_part("e", 2, 1, 5)], turn, 4)  # 4 is missing
    integrity.parts([episode_part("b", 2, 1, 2)], turn, 5)  # 2, late
    integrity.close_episode(turn)  # 4 never came
    expected = {"seq_gaps": 1, "seq_duplicates": 1, "seq_out_of_order": 1}
    assert tally.counts == expected and turn.integrity_errors == expected


def test_a_part_of_a_finished_episode_is_out_of_order_and_not_counted_as_text() -> None:
    tally, integrity, turn = checked()
    integrity.parts([episode_part("a", 2, 1, 1)], turn, 1)
    integrity.commit(turn, assistant("a"))
    integrity.parts([episode_part("late", 2, 1, 2)], turn, 2)
    integrity.commit(turn, {"id": 3, "role": "assistant", "content": []})
    assert tally.counts == {"seq_out_of_order": 1}


def test_text_that_does_not_add_up_is_a_mismatch_and_a_preview_cut_short_is_not() -> None:
    tally, integrity, turn = checked()
    integrity.parts([part("Hel"), part("lo")], turn, 1)
    integrity.commit(turn, assistant("Help"))
    assert tally.counts == {"content_mismatches": 1}
    integrity.parts([episode_part("Hel", 3, 1, 1)], turn, 2)  # era D: a prefix is a preview
    integrity.commit(turn, assistant("Hello"))
    assert tally.counts == {"content_mismatches": 1}


def test_many_frames_of_text_fold_into_the_same_crc_as_one() -> None:
    tally, integrity, turn = checked()
    words = [f"w{i} " for i in range(3 * FOLD_TEXTS + 5)]
    for i, word in enumerate(words):
        integrity.parts([part(word)], turn, i)
    integrity.commit(turn, assistant("".join(words)))
    assert tally.counts == {}
    for i, word in enumerate(words[1:]):  # the next step lost its first word
        integrity.parts([part(word)], turn, i)
    integrity.commit(turn, assistant("".join(words)))
    assert tally.counts == {"content_mismatches": 1}


def test_a_step_seen_only_in_part_is_not_compared() -> None:
    tally = Tally()
    integrity = StreamIntegrity(tally)
    integrity.connected(None)  # eras A-C: the snapshot replays part of the step
    integrity.parts([part("lo")], None, 1)
    integrity.commit(None, assistant("Hello"))
    assert tally.counts == {}


def test_malformed_parts_are_decode_errors_naming_the_field() -> None:
    tally, integrity, turn = checked()
    assert integrity.parts([{"type": "message_part", "message_part": 7}], turn, 1) == MALFORMED
    bad_seq = episode_part("x", 2, 1, 1)
    bad_seq["message_part"]["seq"] = "one"
    integrity.parts([bad_seq], turn, 2)
    assert tally.errors == [
        "message_part.message_part: expected an object, got number 7",
        "message_part.seq: expected integer seq and episode, got string",
    ]
    tool = {"type": "message_part", "message_part": {"part": {"type": "tool-call"}}}
    assert integrity.parts([tool], turn, 3) == NOT_TEXT


def test_a_message_sent_again_is_an_update_only_when_it_reads_differently() -> None:
    tally, integrity, _ = checked()
    first = assistant("a")
    assert not integrity.seen_before(2, first, live=True)
    assert integrity.seen_before(2, dict(first), live=True) and tally.updates == 0
    assert integrity.seen_before(2, assistant("b"), live=True) and tally.updates == 1
    assert integrity.seen_before(2, assistant("c"), live=False) and tally.updates == 1
    integrity.history_reset()
    assert not integrity.seen_before(2, assistant("d"), live=True) and tally.updates == 1


def test_a_replicas_tally_gets_its_share() -> None:
    tally, integrity, turn = checked()
    replica = integrity.replica = ReplicaTally()
    integrity.parts([episode_part("a", 2, 1, 1)], turn, 1)
    integrity.parts([episode_part("a", 2, 1, 1)], turn, 2)
    assert replica.integrity == {"seq_duplicates": 1} == tally.counts
