"""The web UI's chatload tab: what its rows say, from made-up live measurements."""

from __future__ import annotations

from loadtest.core.histogram import Histogram
from loadtest.core.measurement import Measurement
from loadtest.runner.web import LiveTab


def measured(events: int, **counts: int) -> Measurement:
    ttft = Histogram()
    for ms in (100, 200, 300, 400):
        ttft.record(ms * 1000)
    return Measurement(
        counts={"events": events, **counts},
        latency={"time_to_first_output": ttft.to_wire()},
        levels={"open_streams": 7},
    )


def by_figure(rows: list[dict[str, str]]) -> dict[str, str]:
    return {row["figure"]: row["value"] for row in rows}


def test_rates_cover_the_last_two_seconds_however_often_the_ui_polls() -> None:
    tab = LiveTab(start_s=0.0)
    assert by_figure(tab.rows(measured(200), 2.0))["events /s"] == "100.0"
    # Another viewer polls a moment later: still over about 2 s, not 0.1 s.
    rows = tab.rows(measured(210), 2.1)
    assert by_figure(rows)["events /s"] == f"{210 / 2.1:,.1f}"
    assert rows[2]["over"] == "last 2.1 s"
    # Against the newest poll at least 2 s old (t = 2.0).
    assert by_figure(tab.rows(measured(610), 4.0))["events /s"] == "205.0"


def test_the_rest_is_so_far_and_broken_down_by_label() -> None:
    rows = by_figure(
        LiveTab(start_s=0.0).rows(
            measured(
                50,
                turns_checked=4,
                seq_gaps=1,
                **{"retries:overloaded": 2, "retries:rate_limit": 1, "reconnects:1006": 3},
            ),
            1.0,
        )
    )
    assert rows["streams open"] == "7"
    assert rows["time to first output"].startswith("p50 200 · p95 400")
    assert rows["time to first kept output"] == "n/a"
    assert rows["integrity breaks"].startswith("1 of 4 turns checked (seq_gaps 1,")
    assert rows["retries by kind"] == "overloaded 2, rate_limit 1"
    assert rows["reconnects by cause"] == "1006 3"


def test_an_agent_run_adds_its_tools_and_sub_agents() -> None:
    from tests.unit.agent_events import agent_recorder

    rows = by_figure(LiveTab(start_s=0.0).rows(agent_recorder().measurement(), 1.0))
    assert rows["tool calls"] == "4 (1 with an error): execute 1, read_file 1, spawn_agent 2"
    assert rows["tool time"].endswith("ms (4 calls)")
    assert rows["step time to first output"].startswith("p50 50 ·")
    assert rows["sub-agents"].startswith("2 spawned, 1 failed, 1 followed; time to running p50")
    assert "tool calls" not in by_figure(LiveTab(start_s=0.0).rows(measured(5), 1.0))
