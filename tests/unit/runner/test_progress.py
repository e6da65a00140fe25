"""What the terminal shows: labelled figures, trouble never hidden behind a zero."""

from __future__ import annotations

import re

import pytest

from loadtest.core.measurement import merge
from loadtest.core.profiles import Storm
from loadtest.core.recorder import Recorder
from loadtest.core.turn import ErrorInfo
from loadtest.report.build import build_report, storm_run
from loadtest.runner.progress import RunProgress, print_summary
from tests.unit.samples import chat_of_turns, run_info

MS = 1_000_000


def worker(streams: int, drops: int) -> Recorder:
    recorder = Recorder()
    recorder.active_streams(0, streams)
    for _ in range(drops):
        recorder.error(ErrorInfo("stream_closed", "closed 1006"), 0)
    recorder.counts["stream_reconnects"] += drops
    return recorder


def test_the_live_line_shows_open_streams_of_every_worker_and_the_trouble() -> None:
    # Frames after the last sample open a newer, unsampled second: streams must not read 0.
    a, b = worker(streams=3, drops=2), worker(streams=4, drops=0)
    a.frame(5 * 1_000_000_000, 100, 1)
    b.http_request(ok=False)
    line = RunProgress().line(2.0, merge([a.measurement(), b.measurement()]))
    assert "streams open     7" in line
    assert "last 2s: turns/s" in line and "run so far: TTFT p50" in line
    assert "stream drops 2" in line and "reconnects 2" in line and "HTTP errors 1" in line


def test_the_summary_names_the_bottleneck_the_stages_and_the_lost_turns(
    capsys: pytest.CaptureFixture[str],
) -> None:
    recorder = worker(streams=1, drops=98)
    recorder.counts.update(turns_started=61, turns_completed=59)
    recorder.cpu_sample(99.0)
    recorder.error(ErrorInfo("archive", "HTTP 500"), 0)
    report = build_report(recorder.measurement(), run_info())
    print_summary(report, [])
    out = capsys.readouterr().out
    assert "GENERATOR BOTTLENECK" in out
    assert "errors by stage: stream_closed 98, archive 1" in out
    assert "98 dropped, 98 reconnects" in out
    assert "2 lost with a worker" in out


def test_the_summary_splits_first_turns_from_follow_ups_and_gives_a_storms_spread(
    capsys: pytest.CaptureFixture[str],
) -> None:
    recorder = Recorder()
    chat_of_turns(recorder, [100, 30, 40])
    for spread_ms in (2, 3, 7):
        recorder.request("storm_release_spread", spread_ms * MS)
    report = build_report(recorder.measurement(), run_info())
    report.storm = storm_run(recorder.measurement(), Storm(users=3), turns=3)
    print_summary(report, [])
    out = capsys.readouterr().out
    assert re.search(r"time to first output +100\.\d / 100\.\d +30\.\d / 40\.\d", out), out
    assert re.search(r"message \(create / post\) +20\.0 / 20\.0 +5\.0 / 5\.0", out), out
    assert "storm of 3 chats: first turns: 3 started 3.0 ms (p50), 7.0 ms (max) after" in out


def test_an_agent_run_shows_its_steps_tools_and_sub_agents(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.unit.agent_events import agent_recorder

    recorder = agent_recorder()
    line = RunProgress().line(2.0, recorder.measurement())
    assert line.endswith(
        " | tools 4 (1 errors), tool time p50 240 ms, step TTFT p50 50 ms, sub-agents 2 (1 failed)"
    )
    print_summary(build_report(recorder.measurement(), run_info()), [])
    out = capsys.readouterr().out
    assert (
        "agents: steps per turn p50 3, max 3; 4 tool calls (execute 1, read_file 1, "
        "spawn_agent 2), 1 with an error; sub-agents 2 spawned, 1 failed, 1 followed"
    ) in out
    rows = {line[:30].strip(): line[30:].split() for line in out.splitlines()}
    assert rows["tool time"][-1] == "360.0" and rows["tool time: spawn_agent"][-1] == "240.0"
    assert rows["step time to first output"][0] == "50.0"
    assert rows["capacity wait (sub-agents)"][0] == "790.0"
    assert "capacity wait (root pool)" not in rows  # none waited: no row
    # A run without agents prints none of this.
    plain = worker(streams=1, drops=0)
    assert "tools" not in RunProgress().line(2.0, plain.measurement())
