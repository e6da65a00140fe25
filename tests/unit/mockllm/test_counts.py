"""What ``GET /__mock/counts`` reports: requests by API, replies by kind, every fault and tool."""

from __future__ import annotations

from loadtest.mockllm.counts import APIS, TOOLS, LlmCounts
from loadtest.mockllm.faults import Fault


def test_fresh_counts_list_every_api_fault_and_tool_at_zero() -> None:
    wire = LlmCounts().as_json()
    assert wire["requests_by_api"] == dict.fromkeys(APIS, 0)
    assert wire["faults"] == {fault.value: 0 for fault in Fault}
    assert wire["tool_calls"] == dict.fromkeys(TOOLS, 0)
    assert wire["requests"] == wire["streams_completed"] == wire["text_replies"] == 0


def test_requests_and_completed_replies_are_counted_by_kind() -> None:
    counts = LlmCounts()
    counts.request("messages")
    counts.request("messages")
    counts.request("models")
    counts.completed(None, None)  # a text reply ends a turn
    counts.completed(None, "no chat_id")  # a text reply that ended a turn early
    counts.completed("execute", None)
    counts.completed("read_file", None)  # a tool outside the listed ones gets its own key
    wire = counts.as_json()
    assert wire["requests"] == 3
    assert wire["requests_by_api"]["messages"] == 2 and wire["requests_by_api"]["models"] == 1
    assert (wire["streams_completed"], wire["text_replies"]) == (4, 2)
    assert wire["wait_agent_without_chat_id"] == 1
    assert wire["tool_calls"] == {"execute": 1, "spawn_agent": 0, "wait_agent": 0, "read_file": 1}


def test_the_json_is_a_copy_not_a_live_view() -> None:
    counts = LlmCounts()
    wire = counts.as_json()
    counts.request("responses")
    assert wire["requests_by_api"]["responses"] == 0
