"""The simulator's chat state machine without a socket: runs, the queue, promotion,
interrupt, edit's full refresh, archive rules, and what a new stream's snapshot holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from loadtest.protocol.constants import MAX_QUEUE
from loadtest.protocol.eras import PATHS, Era
from loadtest.protocol.models import ChatMessagePart
from loadtest.sim.accounts import User
from loadtest.sim.chat_state import BUFFER_GRACE
from loadtest.sim.chaterror import failure
from loadtest.sim.chats import ChatStore
from loadtest.sim.errors import ApiError
from loadtest.sim.events import Event

USER = User("u1", "u", "u@x", "U", None, False, datetime(2026, 12, 1, tzinfo=UTC))


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def text(value: str) -> list[ChatMessagePart]:
    return [ChatMessagePart(type="text", text=value)]


def kinds(events: list[Event]) -> list[str]:
    return [
        f"status:{e['status']['status']}" if e["type"] == "status" else e["type"] for e in events
    ]


def store(era: Era) -> tuple[ChatStore, Clock]:
    clock = Clock()
    return ChatStore(era, clock), clock


@pytest.mark.parametrize("era", [Era.A, Era.B, Era.D])
def test_create_persists_the_message_and_makes_the_chat_runnable(era: Era) -> None:
    chats, _ = store(era)
    chat, events = chats.create(USER, text("hello"), "model-1")
    first = "pending" if PATHS[era].has_pending else "running"
    # Era D ends every committed history change with preview_reset (section 8.5).
    reset = ["preview_reset"] if era is Era.D else []
    assert kinds(events) == ["message", f"status:{first}", *reset] and chat.active
    assert [m.role for m in chat.messages] == ["user"] and chat.title == "hello"


def test_a_message_while_running_is_queued_then_promoted_without_waiting_between() -> None:
    chats, _ = store(Era.D)
    chat, _ = chats.create(USER, text("first"), "m")
    response, events, starts = chats.post(chat, text("second"), None)
    assert response["queued"] is True and not starts and kinds(events) == ["queue_update"]
    chats.text_part(chat, "text", "answer")
    assert kinds(chats.finish_step(chat, 7)) == ["message", "preview_reset"]
    events, promoted = chats.finish_turn(chat)
    # The queue's head runs at once: its message, the emptied queue, running again.
    assert promoted and kinds(events)[:2] == ["message", "queue_update"]
    assert "status:waiting" not in kinds(events) and chat.active and not chat.queue
    assert [m.role for m in chat.messages] == ["user", "assistant", "user"]
    assert chat.messages[1].usage is not None and chat.messages[1].usage.output_tokens == 7
    events, promoted = chats.finish_turn(chat)
    assert not promoted and kinds(events) == ["status:waiting"] and not chat.active


def test_the_queue_is_full_at_twenty() -> None:
    chats, _ = store(Era.D)
    chat, _ = chats.create(USER, text("busy"), "m")
    for i in range(MAX_QUEUE):
        chats.post(chat, text(f"q{i}"), None)
    with pytest.raises(ApiError) as full:
        chats.post(chat, text("one too many"), None)
    assert (full.value.status, full.value.message) == (429, "Message queue is full.")


def test_interrupt_needs_a_run_and_keeps_what_was_streamed() -> None:
    chats, _ = store(Era.D)
    chat, _ = chats.create(USER, text("go"), "m")
    assert kinds(chats.interrupting(chat)) == ["status:interrupting"]
    chats.text_part(chat, "text", "partial")
    events, promoted = chats.interrupted(chat)
    assert kinds(events) == ["message", "preview_reset", "status:waiting"] and not promoted
    assert chat.messages[-1].role == "assistant"
    with pytest.raises(ApiError) as idle:
        chats.interrupting(chat)
    assert idle.value.status == 409


def test_edit_truncates_clears_the_queue_and_refreshes_everyone() -> None:
    chats, _ = store(Era.D)
    chat, _ = chats.create(USER, text("one"), "m")
    chats.finish_step(chat, 1)
    chats.finish_turn(chat)
    chats.post(chat, text("two"), None)
    chats.post(chat, text("queued"), None)
    edited = chats.editable(chat, str(chat.messages[0].id))
    response, events = chats.edit(chat, edited, text("one, again"))
    assert sorted(response["deleted_message_ids"]) == [1, 2, 3]
    assert kinds(events)[0] == "history_reset" and not chat.queue
    assert [m.role for m in chat.messages] == ["user"] and chat.messages[0].id == 4
    with pytest.raises(ApiError) as assistant:
        chats.editable(chat, "2")
    assert assistant.value.status == 404


def test_archive_rules() -> None:
    chats, _ = store(Era.D)
    chat, _ = chats.create(USER, text("x"), "m")
    with pytest.raises(ApiError) as active:
        chats.set_archived(chat, True)
    assert active.value.status == 409
    chats.finish_turn(chat)
    chats.set_archived(chat, True)
    with pytest.raises(ApiError) as archived:
        chats.post(chat, text("late"), None)
    assert archived.value.status == 400


@pytest.mark.parametrize("era", [Era.A, Era.D])
def test_a_new_streams_snapshot_per_era(era: Era) -> None:
    chats, clock = store(era)
    chat, _ = chats.create(USER, text("a"), "m")
    chats.running(chat)
    chats.record_attempt(chat)
    chats.text_part(chat, "text", "so far")
    snapshot = kinds(chats.snapshot(chat, after_id=None))
    if era is Era.D:
        # Section 8.5: messages, status, then preview_reset always, then the episode's parts.
        assert snapshot == ["message", "status:running", "preview_reset", "message_part"]
    else:
        assert snapshot == ["status:running", "message_part", "message"]
    # after_id leaves out what the client has; a finished step's parts go after the grace.
    assert "message" not in kinds(chats.snapshot(chat, after_id=chat.messages[-1].id))
    chats.finish_step(chat, 1)
    if era is Era.D:
        # A committed step's parts are history: era D relays only the episode under way.
        assert "message_part" not in kinds(chats.snapshot(chat, None))
        return
    chats.finish_turn(chat)
    assert "message_part" in kinds(chats.snapshot(chat, None))
    clock.now += BUFFER_GRACE + timedelta(seconds=1)
    assert "message_part" not in kinds(chats.snapshot(chat, None))


def test_era_d_messages_carry_no_revision_nor_queued_id() -> None:
    """Spec §9.1: ``codersdk.ChatMessage`` has neither, a promoted message included."""
    chats, _ = store(Era.D)
    chat, events = chats.create(USER, text("first"), "m")
    chats.post(chat, text("second"), None)
    chats.finish_step(chat, 1)
    promoted, _ = chats.finish_turn(chat)
    for message in [events[0]["message"], promoted[0]["message"]]:
        assert not {"revision", "queued_message_id"} & set(message)
    assert set(promoted[0]["message"]) <= {
        "id", "chat_id", "created_by", "model_config_id", "created_at", "role", "content", "usage"
    }  # fmt: skip


def test_history_version_rises_once_a_transaction_and_attempts_count_from_one() -> None:
    """Spec §9.2: history_version takes the transaction's snapshot (so it may skip numbers);
    generation_attempt is 1 for an episode's first attempt, +1 per retry, 1 after a commit."""
    chats, clock = store(Era.D)
    chat, _ = chats.create(USER, text("go"), "m")
    assert chat.episode.key == (1, 0)  # created: history 1, no attempt yet
    chats.record_attempt(chat)
    first = chats.text_part(chat, "text", "lost")["message_part"]
    assert (first["history_version"], first["generation_attempt"], first["seq"]) == (1, 1, 1)
    chats.retry(chat, 1, 1000, failure("overloaded", "openai"), clock.now)
    chats.record_attempt(chat)
    again = chats.text_part(chat, "text", "kept")["message_part"]
    assert (again["generation_attempt"], again["seq"]) == (2, 1)
    chats.finish_step(chat, 1)
    # Four transactions so far (create, attempt, retry state, attempt) and the commit's:
    assert chat.episode.key == (5, 0)
    chats.record_attempt(chat)
    assert chats.text_part(chat, "text", "next")["message_part"]["generation_attempt"] == 1
    chats.post(chat, text("later"), None)  # a queue change: no history change
    assert chat.episode.history == 5 and chat.episode.snapshot == 7


def test_retry_is_sent_when_recorded_and_preview_reset_when_the_next_attempt_starts() -> None:
    chats, clock = store(Era.D)
    chat, _ = chats.create(USER, text("go"), "m")
    chats.record_attempt(chat)
    chats.text_part(chat, "text", "lost")
    events = chats.retry(chat, 1, 1000, failure("overloaded", "openai"), clock.now)
    assert kinds(events) == ["retry"] and chat.episode.attempt == 1
    assert "retry" in kinds(chats.snapshot(chat, None))  # the retry state, replayed
    events = chats.record_attempt(chat)
    # In a frame of its own: the stream writer breaks the frame on both sides of it.
    assert kinds(events) == ["frame:break", "preview_reset", "frame:break"]
    assert chat.episode.attempt == 2 and "retry" not in kinds(chats.snapshot(chat, None))
    assert chats.text_part(chat, "text", "kept")["message_part"]["seq"] == 1


def test_a_stream_opened_while_requires_action_is_asked_too() -> None:
    chats, _ = store(Era.D)
    chat, _ = chats.create(USER, text("q"), "m")
    chats.requires_action(chat, "call_1", "tool", {"a": 1}, 3)
    chats.enter_requires_action(chat)
    # Section 8.5's snapshot order: the status, the calls asked, then preview_reset.
    snapshot = chats.snapshot(chat, after_id=None)
    assert kinds(snapshot)[-3:] == ["status:requires_action", "action_required", "preview_reset"]
    assert snapshot[-2]["action_required"]["tool_calls"][0]["tool_call_id"] == "call_1"
