"""The report built from a recorder's measurement: the contract's keys, exact rates, warnings, buckets."""

from __future__ import annotations

import orjson
import pytest

from loadtest.core.histogram import Histogram
from loadtest.core.profiles import Storm
from loadtest.core.recorder import Recorder
from loadtest.report.build import buckets, build_report, storm_run
from loadtest.report.model import Report
from tests.unit.events import MS
from tests.unit.samples import chat_of_turns, feed_some, run_info


def test_generator_bottleneck_warning() -> None:
    recorder = Recorder()
    recorder.cpu_sample(97.0)
    recorder.loop_lag(2 * MS)
    report = build_report(recorder.measurement(), run_info())
    assert report.generator.bottleneck and report.generator.cpu_percent_max == 97.0
    quiet = Recorder()
    quiet.cpu_sample(30.0)
    quiet.loop_lag(1 * MS)
    assert not build_report(quiet.measurement(), run_info()).generator.bottleneck
    # One hiccup among a hundred samples is not a bottleneck; a lag at p99 is.
    hiccup = Recorder()
    for lag_ms in [1] * 199 + [400]:
        hiccup.loop_lag(lag_ms * MS)
    assert not build_report(hiccup.measurement(), run_info()).generator.bottleneck
    for _ in range(3):
        hiccup.loop_lag(400 * MS)
    assert build_report(hiccup.measurement(), run_info()).generator.bottleneck


def test_report_has_the_contract_keys_and_exact_rates() -> None:
    recorder = Recorder(origin_ns=0, origin_epoch_s=run_info().started_at.timestamp())
    feed_some(recorder, 1, frames=4)
    report = build_report(recorder.measurement(), run_info(duration=2.0))
    data = orjson.loads(orjson.dumps(report.model_dump(mode="json")))
    assert set(data) >= {
        "schema_version",
        "tool",
        "run",
        "latency_ms",
        "distributions",
        "counts",
        "rates",
        "errors",
        "timeseries",
        "slo",
        "generator",
    }
    assert data["schema_version"] == 1 and data["tool"]["name"] == "chatload"
    assert set(data["run"]) >= {
        "started_at",
        "ended_at",
        "duration_s",
        "complete",
        "scenario",
        "workers",
        "load",
        "target",
    }
    for name in (
        "time_to_first_output",
        "time_to_terminal_status",
        "time_to_running",
        "chat_message_latency",
        "inter_frame_gap",
        "time_per_output_token",
    ):
        assert set(data["latency_ms"][name]) == {
            "count",
            "min",
            "mean",
            "p50",
            "p90",
            "p95",
            "p99",
            "p999",
            "max",
        }
    assert {"events_per_frame", "frame_bytes", "retries_per_turn"} <= set(data["distributions"])
    counts = data["counts"]
    # 4 turns: turn 0 ends in error, 3 complete; 3 data frames a turn, and one retry frame
    # (seed 1: turn 2); each turn also gets a ping and a bad frame, which are not data.
    assert (counts["turns_started"], counts["turns_completed"], counts["turns_failed"]) == (4, 3, 1)
    assert (counts["frames"], counts["pings"], counts["decode_errors"]) == (4 * 3 + 1, 4, 4)
    assert data["rates"]["frames_per_s"] == counts["frames"] / 2.0
    assert data["rates"]["error_rate"] == 0.25
    assert data["rates"]["retry_rate"] == counts["turns_retried"] / 4
    assert {
        "t",
        "active_streams",
        "frames_per_s",
        "events_per_s",
        "turns_completed",
        "errors",
        "retries",
    } <= set(data["timeseries"][0])
    assert sum(p["turns_completed"] for p in data["timeseries"]) == 3
    stages = {row["stage"] for row in data["errors"]}
    assert stages == {"decode", "status_error"}
    assert set(data["errors"][0]) == {
        "stage",
        "kind",
        "provider",
        "status_code",
        "retryable",
        "count",
        "message",
    }
    assert (
        report.figure("time_to_first_output.p95")
        == data["latency_ms"]["time_to_first_output"]["p95"]
    )
    assert report.figure("error_rate") == 0.25
    assert report.figure("no_such_figure.p50") is None


def test_integer_distributions_get_one_bucket_per_value() -> None:
    hist = Histogram()
    for value, n in ((1, 5), (2, 3), (3, 1)):
        hist.record_many(value, n)
    assert buckets(hist, 1.0) == [[1.0, 5], [2.0, 3], [3.0, 1]]
    wide = Histogram()
    for value in range(0, 400, 5):
        wide.record(value)
    rows = buckets(wide, 1.0)
    assert len(rows) == 40 and sum(n for _, n in rows) == 80 and rows[-1][0] == 395


def test_a_lost_workers_in_flight_turns_are_counted_as_lost() -> None:
    recorder = Recorder()
    recorder.counts.update(turns_started=61, turns_completed=59)
    report = build_report(recorder.measurement(), run_info())
    assert report.counts.turns_lost == 2


def test_replicas_reconnects_and_cross_replica_lag_reach_the_report() -> None:
    """Two processes' replica figures merge per replica; the report names each replica."""
    from loadtest.core.measurement import merge
    from loadtest.core.turn import Turn

    recorders = [Recorder(), Recorder()]
    for recorder, streams in zip(recorders, (2, 3), strict=True):
        for index in (0, 1):
            tally = recorder.replica(index)
            for _ in range(streams):
                tally.stream_opened()
            for _ in range(10 * (index + 1)):
                tally.frame(2)
        turn = Turn(t0=0, replica=1, first_output_at=40 * MS, terminal_at=90 * MS)
        turn.outcome = "completed"
        recorder.turn_ended(turn)
    recorders[0].reconnected("error", 150 * MS)
    recorders[1].reconnected("1001", 250 * MS)
    recorders[0].cross_replica_lag(3 * MS)
    recorders[1].cross_replica_lag(-1 * MS)
    info = run_info()
    info.target.replicas = ["http://replica-a:3000", "http://replica-b:3000"]
    report = build_report(merge(r.measurement() for r in recorders), info)
    first, second = report.replicas
    assert (first.url, first.streams, first.frames, first.events) == (
        "http://replica-a:3000",
        5,
        20,
        40,
    )
    assert (second.streams, second.frames, second.events) == (5, 40, 80)
    assert first.time_to_first_output.count == 0 and second.time_to_first_output.count == 2
    assert second.time_to_first_output.p50 == pytest.approx(40, rel=0.01)
    assert report.counts.reconnects == 2
    assert report.reconnects_by_cause == {"1001": 1, "error": 1}
    assert report.latency_ms["reconnect_time"].max == pytest.approx(250, rel=0.01)
    lag = report.latency_ms["cross_replica_lag"]
    assert lag.count == 2 and lag.min == pytest.approx(-1, rel=0.01)
    assert lag.max == pytest.approx(3, rel=0.01)
    # One target: no replicas section.
    assert build_report(Recorder().measurement(), run_info()).replicas == []


def _memory_report(mb_at: list[float], seconds_apart: float = 1.0) -> Report:
    """A report whose generator memory was ``mb_at[i]`` MB at second i (x seconds_apart)."""
    recorder = Recorder(origin_ns=0, origin_epoch_s=run_info().started_at.timestamp())
    for i, mb in enumerate(mb_at):
        recorder.memory_sample(int(i * seconds_apart * 1e9), int(mb * 1024))
    return build_report(recorder.measurement(), run_info(duration=len(mb_at) * seconds_apart))


def test_generator_memory_start_peak_end_and_second_half_slope() -> None:
    # 100 MB for three minutes, then +2 MB a second for three more minutes.
    curve = [100.0] * 180 + [100.0 + 2 * s for s in range(1, 181)]
    report = _memory_report(curve)
    gen = report.generator
    assert (gen.memory_mb_start, gen.memory_mb_peak, gen.memory_mb_end) == (100.0, 460.0, 460.0)
    assert gen.memory_growth_mb_per_min == pytest.approx(120.0, rel=1e-3)
    assert any("memory grew 120.0 MB/min" in w for w in gen.warnings)
    assert not gen.bottleneck, "a growing memory is a warning, not a CPU bottleneck"
    assert report.timeseries[-1].generator_memory_mb == 460.0


def test_a_plateau_after_start_up_raises_no_memory_warning() -> None:
    # Start-up allocations in the first half, then flat with sampling noise.
    curve = [50.0 + s for s in range(60)] + [110.0 + (s % 3) * 0.5 for s in range(300)]
    gen = _memory_report(curve).generator
    assert gen.memory_mb_peak == 111.0
    assert abs(gen.memory_growth_mb_per_min) < 0.5
    assert gen.warnings == []


def test_a_short_run_is_not_judged_for_memory() -> None:
    gen = _memory_report([100.0 + 10 * s for s in range(200)]).generator
    assert gen.memory_growth_mb_per_min is not None and gen.warnings == []


def test_phases_split_each_chats_first_turn_from_its_follow_ups_exactly() -> None:
    recorder = Recorder()
    chat_of_turns(recorder, [100, 30, 40])
    chat_of_turns(recorder, [300, 60])
    phases = build_report(recorder.measurement(), run_info()).phases
    first, later = phases.initial, phases.follow_up
    assert first["time_to_first_output"].count == 2 and later["time_to_first_output"].count == 3
    assert first["time_to_first_output"].min == pytest.approx(100, rel=1e-3)
    assert first["time_to_first_output"].max == pytest.approx(300, rel=1e-3)
    assert later["time_to_first_output"].min == pytest.approx(30, rel=1e-3)
    assert later["time_to_first_output"].max == pytest.approx(60, rel=1e-3)
    assert later["time_to_terminal_status"].max == pytest.approx(110, rel=1e-3)
    # The message that started each turn: the create, then the posts.
    assert first["message_latency"].count == 2 and first["message_latency"].p50 == 20
    assert later["message_latency"].count == 3 and later["message_latency"].p50 == 5


def test_a_storms_report_says_how_close_together_each_barrier_started_its_turns() -> None:
    recorder = Recorder()
    for spread_ms in (1, 2, 9):
        recorder.request("storm_release_spread", spread_ms * MS)
    recorder.request("storm_follow_up_spread", 4 * MS)
    measured = recorder.measurement()
    held = storm_run(measured, Storm(users=3, turn_start_delay=2.0), turns=5)
    assert (held.chats, held.turns, held.turn_start_delay_s) == (3, 5, 2.0)
    assert held.release_spread_ms.count == 3 and held.release_spread_ms.max == 9
    assert held.follow_up_release_spread_ms is not None
    assert held.follow_up_release_spread_ms.p50 == 4
    # No delay (or a single turn): nothing held the follow-ups, so no spread is claimed.
    assert storm_run(measured, Storm(users=3), turns=5).follow_up_release_spread_ms is None
    assert (
        storm_run(measured, Storm(users=3, turn_start_delay=2), turns=1).follow_up_release_spread_ms
        is None
    )


def test_agent_figures_are_in_report_json_as_the_contract_names_them() -> None:
    from tests.unit.agent_events import agent_recorder

    report = build_report(agent_recorder().measurement(), run_info())
    data = orjson.loads(report.to_json())
    counts = data["counts"]
    assert (counts["tool_calls"], counts["tool_errors"]) == (4, 1)
    assert (counts["subagents_spawned"], counts["subagents_failed"]) == (2, 1)
    assert counts["subagents_followed"] == 1
    assert data["tool_calls_by_name"] == {"execute": 1, "read_file": 1, "spawn_agent": 2}
    by_name = data["tool_time_by_name"]
    assert sorted(by_name) == ["execute", "read_file", "spawn_agent"]
    assert (by_name["spawn_agent"]["count"], by_name["spawn_agent"]["min"]) == (2, 200.0)
    latency = data["latency_ms"]
    assert (latency["step_time_to_first_output"]["count"], latency["tool_time"]["count"]) == (2, 4)
    assert latency["subagent_time_to_running"]["count"] == 2
    assert latency["subagent_time_to_first_output"]["max"] == 500.0
    assert latency["subagent_duration"]["max"] == 1200.0
    assert data["distributions"]["steps_per_turn"]["max"] == 3.0
    assert data["distributions"]["tool_calls_per_turn"]["max"] == 4.0
    pools = data["capacity_wait_by_pool"]
    assert (pools["root"]["count"], pools["subagent"]["max"]) == (0, 790.0)
    turn = data["typical_turn"]
    assert (turn["duration_ms"], turn["steps"], len(turn["segments"])) == (2100.0, 3, 10)
    assert turn["segments"][2] == {
        "kind": "tool",
        "label": "execute",
        "start_ms": 150.0,
        "end_ms": 400.0,
    }
    assert report.agent_run and report.figure("tool_time.max") == by_name_max(data)
    assert Report.model_validate_json(report.to_json()) == report


def by_name_max(data: dict) -> float:
    return max(summary["max"] for summary in data["tool_time_by_name"].values())


def test_a_run_without_agents_has_none_of_their_sections() -> None:
    recorder = Recorder(origin_ns=0, origin_epoch_s=run_info().started_at.timestamp())
    feed_some(recorder, 1, frames=4)
    report = build_report(recorder.measurement(), run_info())
    assert not report.agent_run and report.tool_calls_by_name == {}
    assert report.capacity_wait_by_pool == {} and report.tool_time_by_name == {}
    # A plain answer is a turn of one step: its timeline is kept all the same.
    assert report.typical_turn is not None and report.typical_turn.steps == 1


def test_the_typical_turn_is_the_one_nearest_the_median_duration() -> None:
    from loadtest.core.tracker import TurnTracker
    from tests.unit.agent_events import commit, text
    from tests.unit.events import episode_part, message, status

    recorder = Recorder()
    tracker = TurnTracker(recorder)
    start = 0
    for mid, duration in enumerate((100, 5000, 900, 1100, 20), start=1):
        t0 = start * MS
        tracker.start(t0)
        tracker.feed([message(mid * 2, "user"), status("running")], t0 + 5 * MS)
        tracker.feed([episode_part("x", mid * 2, 1, 1)], t0 + 10 * MS)
        tracker.feed(
            [commit(mid * 2 + 1, "assistant", text("x")), status("waiting")],
            t0 + duration * MS,
        )
        start += 10_000
    measurement = recorder.measurement()
    # The median of 20, 100, 900, 1100, 5000 ms is 900: that turn, one step, is drawn.
    turn = build_report(measurement, run_info()).typical_turn
    assert turn is not None and (turn.duration_ms, turn.steps) == (900.0, 1)
    assert [s.kind for s in turn.segments] == ["wait", "stream"]
    # Kept per band of durations (5 bands here), merged across processes by the least.
    assert len(measurement.timelines) == 5
