"""``--prometheus``'s page from a made-up run: Coder's names, run_id on every scaletest
series, phase on exactly the four, Coder's buckets, our stages mapped onto Coder's five."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from loadtest.core.recorder import Recorder
from loadtest.core.turn import ErrorInfo, Turn
from loadtest.protocol.scaletest import PROCESSING_BUCKETS, REQUEST_BUCKETS
from loadtest.runner.prometheus import LiveFigures

MS = 1_000_000
RUN = "0b6f3c1e-5a7d-4c2b-9e8f-1a2b3c4d5e6f"
PHASED = {
    "coderd_scaletest_chat_message_latency_seconds",
    "coderd_scaletest_chat_time_to_running_seconds",
    "coderd_scaletest_chat_time_to_first_output_seconds",
    "coderd_scaletest_chat_time_to_terminal_status_seconds",
}


def _page() -> list[tuple[str, str, dict[str, str], float]]:
    """(family, sample, labels, value) of every sample, as Prometheus parses the page."""
    recorder = Recorder()
    recorder.request("chat_create_latency", 80 * MS)
    for t0, initial, ttft in ((0, True, 300), (10_000 * MS, False, 120), (20_000 * MS, False, 2)):
        turn = Turn(t0=t0, initial=initial)
        turn.running_at, turn.first_output_at = t0 + 50 * MS, t0 + ttft * MS
        turn.terminal_at, turn.outcome = t0 + 900 * MS, "completed"
        recorder.turn_ended(turn)
        if not initial:
            recorder.message_posted(30 * MS, queued=False)
    recorder.error(ErrorInfo("stream_closed", "closed 1006"), 0)
    recorder.error(ErrorInfo("status_error", "chat ended in status error"), 0)
    recorder.error(ErrorInfo("timeout", "no terminal status within 30 s"), 0)
    measured = recorder.measurement()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LiveFigures(lambda: measured, RUN))
    text = generate_latest(registry).decode()
    return [
        (family.name, s.name, s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def test_every_scaletest_series_has_the_run_id_and_only_the_four_have_phase() -> None:
    samples = _page()
    scaletest = [s for s in samples if s[0].startswith("coderd_scaletest_")]
    assert {s[0] for s in scaletest} >= PHASED | {
        "coderd_scaletest_chat_create_latency_seconds",
        "coderd_scaletest_chat_conversation_duration_seconds",
        "coderd_scaletest_chat_stage_failures",
        "coderd_scaletest_chat_terminal_status",
        "coderd_scaletest_chat_turns_completed",
        "coderd_scaletest_chat_retry_events",
        "coderd_scaletest_active_chat_streams",
    }
    for family, name, labels, _ in scaletest:
        assert labels["run_id"] == RUN, name
        assert ("phase" in labels) == (family in PHASED), name
    for family, _, labels, _ in samples:
        if family.startswith("chatload_"):
            assert "run_id" not in labels


def test_the_buckets_are_coders_and_the_phases_split_the_turns() -> None:
    samples = _page()

    def les(family: str, phase: str | None = None) -> list[str]:
        return [
            labels["le"]
            for f, name, labels, _ in samples
            if f == family and name.endswith("_bucket") and labels.get("phase") == phase
        ]

    def value(sample: str, **want: str) -> float:
        found = [v for _, n, lab, v in samples if n == sample and want.items() <= lab.items()]
        assert len(found) == 1, (sample, want)
        return found[0]

    ttft = "coderd_scaletest_chat_time_to_first_output_seconds"
    assert les(ttft, "initial") == [repr(b) for b in PROCESSING_BUCKETS] + ["+Inf"]
    create = "coderd_scaletest_chat_create_latency_seconds"
    assert les(create) == [repr(b) for b in REQUEST_BUCKETS] + ["+Inf"]
    assert value(ttft + "_count", phase="initial") == 1
    assert value(ttft + "_count", phase="follow_up") == 2
    # 2 ms and 120 ms: the first under the 0.1 s bound, the second under the next.
    assert value(ttft + "_bucket", phase="follow_up", le="0.1") == 1
    assert value(ttft + "_bucket", phase="follow_up", le="0.16015354064014226") == 2
    assert value(ttft + "_bucket", phase="initial", le="0.25649156579573695") == 0
    assert value(ttft + "_bucket", phase="initial", le="0.4107803240652128") == 1
    # A chat's first turn is its create: message latency has follow-ups only.
    message = "coderd_scaletest_chat_message_latency_seconds"
    assert les(message, "initial") == []
    assert value(message + "_count", phase="follow_up") == 2


def test_our_stages_map_onto_coders_five_and_stay_whole_in_chatload_stage_failures() -> None:
    samples = _page()
    coder = {
        labels["stage"]: v
        for _, n, labels, v in samples
        if n == "coderd_scaletest_chat_stage_failures_total"
    }
    assert coder == {
        "create_chat": 0,
        "create_message": 0,
        "stream_open": 0,
        "stream_ended_early": 1,
        "status_error": 1,
    }
    ours = {
        labels["stage"]: v for _, n, labels, v in samples if n == "chatload_stage_failures_total"
    }
    assert ours == {"stream_closed": 1, "status_error": 1, "timeout": 1}
    terminal = {
        labels["status"]: v
        for _, n, labels, v in samples
        if n == "coderd_scaletest_chat_terminal_status_total"
    }
    assert terminal == {"waiting": 3, "error": 1}


def test_tools_by_name_step_and_sub_agent_latencies_and_waits_by_pool() -> None:
    from tests.unit.agent_events import agent_recorder

    measured = agent_recorder().measurement()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LiveFigures(lambda: measured, RUN))
    samples = [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    ]

    def value(name: str, **labels: str) -> float:
        (found,) = [v for n, la, v in samples if n == name and la == labels]
        return found

    assert value("chatload_tool_calls_total", tool="spawn_agent") == 2
    assert value("chatload_tool_calls_total", tool="execute") == 1
    assert value("chatload_tool_errors_total") == 1
    assert value("chatload_tool_time_seconds_count", tool="spawn_agent") == 2
    assert value("chatload_tool_time_seconds_sum", tool="spawn_agent") == 0.44
    # 0.2 s and 0.24 s, under Coder's request buckets.
    assert value("chatload_tool_time_seconds_bucket", tool="read_file", le="+Inf") == 1
    assert value("chatload_step_time_to_first_output_seconds_count") == 2
    assert value("chatload_subagent_time_to_running_seconds_count") == 2
    assert value("chatload_subagents_spawned_total") == 2
    assert value("chatload_capacity_wait_seconds_count", pool="subagent") == 1
    assert value("chatload_capacity_wait_seconds_count", pool="root") == 0
