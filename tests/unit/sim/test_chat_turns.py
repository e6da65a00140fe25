"""A running turn's changes to its chat, driven directly on ``ChatTurns``: parts with the
integrity faults a client sees, tool calls and the client's tool results, failures, the turn's
end, and a replica's takeover."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loadtest.protocol.eras import Era
from loadtest.protocol.models import ChatMessage, ChatMessagePart, ToolResult
from loadtest.sim.chat_state import BUFFER_GRACE, ChatState
from loadtest.sim.chat_turns import ChatTurns
from loadtest.sim.chaterror import failure
from loadtest.sim.errors import ApiError
from loadtest.sim.events import Event

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def kinds(events: list[Event]) -> list[str]:
    return [
        f"status:{e['status']['status']}" if e["type"] == "status" else e["type"] for e in events
    ]


def sent(events: list[Event]) -> list[str]:
    """Parts as ``text@seq``, marks by name: what a client gets and what the sim counts."""
    out = []
    for event in events:
        if event["type"] == "message_part":
            body = event["message_part"]
            out.append(f"{body['part']['text']}@{body.get('seq', '-')}")
        else:
            out.append(event["type"])
    return out


def running(era: Era = Era.D) -> tuple[ChatTurns, ChatState]:
    """A ledger holding one chat whose turn is running."""
    turns = ChatTurns(era, lambda: NOW)
    chat = ChatState("u1", "title", "m", NOW)
    turns.chats[chat.id] = chat
    turns.running(chat)
    return turns, chat


def test_integrity_faults_break_parts_and_mark_what_a_client_can_see() -> None:
    turns, chat = running(Era.D)
    turns.record_attempt(chat)
    deltas = [("text", c) for c in "abcdef"]
    events = turns.text_parts(
        chat, deltas, ["part_drop", "part_duplicate", "part_reorder", None, None, None]
    )
    assert sent(events) == [
        "mark:seq_gaps",
        "b@2",
        "b@2",
        "mark:seq_duplicates",
        "d@4",
        "c@3",
        "mark:seq_out_of_order",
        "e@5",
        "f@6",
    ]
    # The client keeps one b and shows c after d: "bdcef" against the committed "abcdef".
    committed = turns.finish_step(chat, 1)
    assert kinds(committed)[:2] == ["mark:content_mismatches", "message"]
    assert committed[1]["message"]["content"][0]["text"] == "abcdef"


def test_without_numbers_only_the_text_tells_and_a_harmless_fault_is_not_marked() -> None:
    turns, chat = running(Era.B)
    events = turns.text_parts(chat, [("text", "a"), ("text", "a")], ["part_reorder", None])
    assert sent(events) == ["a@-", "a@-"]  # swapped, but the same text: nothing to see
    assert "mark:content_mismatches" not in kinds(turns.finish_step(chat, 1))
    turns.text_parts(chat, [("text", "a"), ("text", "b")], ["part_duplicate", None])
    assert kinds(turns.finish_step(chat, 1))[0] == "mark:content_mismatches"  # "aab"


def test_a_clean_step_commits_reasoning_text_and_usage_and_tells_the_part_buffer() -> None:
    turns, chat = running(Era.D)
    told: list[tuple[str, tuple[int, int], int]] = []
    turns.on_parts = lambda chat_id, key, parts: told.append((chat_id, key, len(parts)))
    turns.record_attempt(chat)
    turns.text_part(chat, "reasoning", "hmm")
    turns.text_parts(chat, [("text", "hel"), ("text", "lo")])
    assert [n for _, _, n in told] == [1, 2] and told[0][0] == chat.id
    events = turns.finish_step(chat, None)
    assert kinds(events) == ["message", "preview_reset"]
    message = events[0]["message"]
    assert [p["type"] for p in message["content"]] == ["reasoning", "text"]
    assert message["content"][1]["text"] == "hello"
    # No token count given: a quarter of the text's characters, at least one.
    assert message["usage"]["output_tokens"] == 1
    assert chat.messages[-1].role == "assistant" and not chat.text and chat.buffer_done


def test_a_tool_call_streams_its_arguments_then_the_complete_call_kept_for_the_commit() -> None:
    turns, chat = running(Era.D)
    turns.record_attempt(chat)
    events = turns.tool_call(chat, "call_1", "execute", {"cmd": "ls"})
    parts = [e["message_part"]["part"] for e in events]
    assert parts[0]["args_delta"] == '{"cmd":"ls"}' and "args" not in parts[0]
    assert parts[1]["args"] == {"cmd": "ls"} and parts[1]["tool_call_id"] == "call_1"
    content = turns.finish_step(chat, 2)[0]["message"]["content"]
    assert [(p["type"], p["tool_name"]) for p in content] == [("tool-call", "execute")]


def test_server_tools_stream_their_results_then_commit_a_tool_message_each() -> None:
    turns, chat = running(Era.D)
    turns.record_attempt(chat)
    streamed, committed = turns.run_tools(
        chat, [("c1", "execute", {"out": "ok"}, False), ("c2", "read_file", "nope", True)]
    )
    assert [e["message_part"]["part"]["tool_call_id"] for e in streamed] == ["c1", "c2"]
    assert kinds(committed) == ["message", "message", "preview_reset"]
    assert [m.role for m in chat.messages] == ["tool", "tool"]
    assert chat.messages[1].content[0].is_error is True


@pytest.mark.parametrize(
    ("era", "order"),
    [(Era.D, ["status:error", "error"]), (Era.A, ["error", "status:error"])],
)
def test_a_failed_turn_reports_its_error_in_the_eras_order(era: Era, order: list[str]) -> None:
    turns, chat = running(era)
    turns.text_part(chat, "text", "half")
    events = turns.fail(chat, failure("overloaded", "openai"))
    assert kinds(events) == order
    assert chat.status == "error" and not chat.active and chat.last_error is not None
    assert not chat.text and not chat.parts  # what the step had streamed is dropped


def test_a_turn_that_ends_with_an_empty_queue_waits_and_keeps_its_buffer_a_grace() -> None:
    turns, chat = running(Era.D)
    events, promoted = turns.finish_turn(chat)
    assert (kinds(events), promoted) == (["status:waiting"], False)
    assert chat.buffer_until == NOW + BUFFER_GRACE


def test_an_interrupted_turn_commits_what_it_streamed_only_if_anything() -> None:
    turns, chat = running(Era.D)
    events, _ = turns.interrupted(chat)
    assert kinds(events) == ["status:waiting"] and not chat.messages
    turns.running(chat)
    turns.text_part(chat, "text", "partial")
    events, _ = turns.interrupted(chat)
    assert kinds(events) == ["message", "preview_reset", "status:waiting"]
    assert chat.messages[-1].content[0].text == "partial"


def test_requires_action_waits_for_the_clients_tool_results() -> None:
    turns, chat = running(Era.D)
    with pytest.raises(ApiError) as refused:
        turns.tool_results(chat, [ToolResult(tool_call_id="x", output=1)])
    assert (refused.value.status, refused.value.message) == (409, "Chat is in an invalid state.")
    # Spec §9.3: the tool-call message is committed first, then, separately, requires_action.
    committed = turns.requires_action(chat, "call_1", "tool", {"a": 1}, 3)
    assert kinds(committed) == ["message", "preview_reset"] and chat.status == "running"
    events = turns.enter_requires_action(chat)
    assert kinds(events) == ["status:requires_action", "action_required"]
    assert events[-1]["action_required"]["tool_calls"] == [
        {"tool_call_id": "call_1", "tool_name": "tool", "args": '{"a":1}'}
    ]
    answered = turns.tool_results(
        chat, [ToolResult(tool_call_id="call_1", output={"ok": 1}, is_error=True)]
    )
    assert kinds(answered) == ["message", "status:running", "preview_reset"]
    part = answered[0]["message"]["content"][0]
    assert (part["type"], part["result"], part["is_error"]) == ("tool-result", {"ok": 1}, True)
    assert chat.needs == []


@pytest.mark.parametrize(
    ("results", "message", "detail"),
    [
        (
            [{"tool_call_id": "a", "output": 1}, {"tool_call_id": "a", "output": 1}],
            "Duplicate tool_call_id in results.",
            'Duplicate tool call ID "a".',
        ),
        (
            [{"tool_call_id": "a"}, {"tool_call_id": "b", "output": 1}],
            "Tool result output must be valid JSON.",
            'Output for tool call "a" is not valid JSON.',
        ),
        (
            [{"tool_call_id": "a", "output": None}],
            "Missing tool result.",
            'Missing result for tool call "b".',
        ),
        (
            [{"tool_call_id": c, "output": 1} for c in ("a", "b", "c")],
            "Unexpected tool result.",
            'No pending tool call with ID "c".',
        ),
    ],
)
def test_tool_results_that_do_not_answer_the_pending_calls_are_refused(
    results: list[dict[str, object]], message: str, detail: str
) -> None:
    """chatstate/toolresults.go's order: per result a duplicate, then output that is not
    JSON (a missing one; null is JSON); then a call left unanswered, then one not asked."""
    turns, chat = running(Era.D)
    turns.requires_action(chat, "a", "tool", {}, 1)
    chat.needs.append(chat.needs[0].model_copy(update={"tool_call_id": "b"}))
    turns.enter_requires_action(chat)
    with pytest.raises(ApiError) as refused:
        turns.tool_results(chat, [ToolResult.model_validate(r) for r in results])
    assert (refused.value.status, refused.value.message, refused.value.detail) == (
        400,
        message,
        detail,
    )
    assert chat.status == "requires_action"  # nothing was taken


def test_past_the_deadline_each_call_gets_a_cancellation_and_the_chat_runs_on() -> None:
    turns, chat = running(Era.D)
    turns.requires_action(chat, "a", "tool", {}, 1)
    turns.enter_requires_action(chat)
    events = turns.cancel_requires_action(chat)
    assert kinds(events) == ["message", "status:running", "preview_reset"]
    part = events[0]["message"]["content"][0]
    assert (part["tool_call_id"], part["result"], part["is_error"]) == (
        "a",
        "Tool execution timed out",
        True,
    )


def test_a_chat_taken_over_continues_its_ids_and_versions_and_runs_again() -> None:
    turns = ChatTurns(Era.D, lambda: NOW)
    history = [
        ChatMessage(
            id=41,
            chat_id="c1",
            model_config_id="m",
            created_at=NOW,
            role="user",
            content=[ChatMessagePart(type="text", text="hi")],
        )
    ]
    chat = turns.restore("c1", "u1", "t", "m", history, (9, 7, 2, 3, 0))
    assert turns.chats["c1"] is chat and chat.queue_changed
    events = turns.taken_over(chat)
    assert kinds(events) == ["status:running"] and chat.active
    assert chat.episode.snapshot == 10  # the row's next transaction
    turns.finish_step(chat, 1)
    assert chat.messages[-1].id == 42
