"""The users' reporter: REST calls and ended turns as Locust requests (so Locust's own UI and
files show turn latency), REST outcomes in the recorder's counts."""

from __future__ import annotations

from locust.env import Environment

from loadtest.client.rest import RestError
from loadtest.core.turn import ErrorInfo, Turn
from loadtest.locust import runtime
from loadtest.locust.users import Reporter, reporter
from loadtest.protocol.eras import Era
from loadtest.scenario import Scenario

MS = 1_000_000


def setup() -> tuple[Environment, runtime.Runtime, Reporter]:
    env = Environment()
    env.create_local_runner()  # its stats listen to the request events
    settings = runtime.RunSettings(scenario=Scenario(), host="http://x", era=Era.D)
    rt = runtime.install(settings, ["t"])
    return env, rt, reporter(env, rt)


def test_one_reporter_per_environment() -> None:
    env, rt, made = setup()
    assert reporter(env, rt) is made


def test_rest_calls_are_requests_and_counts() -> None:
    env, rt, made = setup()
    made.request("create_chat", "POST", 12 * MS, 300, None)
    made.request("create_chat", "POST", 30 * MS, 0, RestError("create_chat", 502, "bad gateway"))
    made.request("create_chat", "POST", 5 * MS, 0, RestError("create_chat", None, "refused"))
    entry = env.stats.get("create_chat", "POST")
    assert (entry.num_requests, entry.num_failures) == (3, 2)
    assert entry.max_response_time == 30 and entry.min_response_time == 5
    counts = rt.recorder.measurement().counts
    assert counts["http_requests"] == 3 and counts["http_errors"] == 2
    assert counts["http_connection_errors"] == 1


def test_a_completed_turn_reports_ttft_and_e2e_from_its_intended_start() -> None:
    env, _, made = setup()
    turn = Turn(t0=100 * MS, intended=90 * MS, first_output_at=150 * MS, terminal_at=400 * MS)
    turn.outcome, turn.parts = "completed", 7
    made.turn(turn)
    ttft = env.stats.get("time_to_first_output", "TURN")
    e2e = env.stats.get("time_to_terminal_status", "TURN")
    assert (ttft.num_requests, ttft.max_response_time) == (1, 60)
    assert (e2e.num_requests, e2e.max_response_time) == (1, 310)
    assert e2e.total_content_length == 7


def test_an_end_learnt_from_a_snapshot_has_no_e2e_and_an_unfinished_turn_none() -> None:
    env, _, made = setup()
    snapshot_end = Turn(t0=0, first_output_at=5 * MS, terminal_at=9 * MS, terminal_live=False)
    snapshot_end.outcome = "completed"
    made.turn(snapshot_end)
    cut = Turn(t0=0, first_output_at=5 * MS)
    cut.outcome = "unfinished"
    made.turn(cut)
    assert env.stats.get("time_to_first_output", "TURN").num_requests == 1
    assert env.stats.get("time_to_terminal_status", "TURN").num_requests == 0


def test_a_failed_turn_is_one_failure_saying_where_it_failed() -> None:
    env, _, made = setup()
    failed = Turn(t0=0, terminal_at=20 * MS)
    failed.outcome = "failed"
    failed.error = ErrorInfo("status_error", "provider overloaded")
    made.turn(failed)
    entry = env.stats.get("time_to_terminal_status", "TURN")
    assert (entry.num_requests, entry.num_failures) == (1, 1)
    (error,) = env.stats.errors.values()
    assert "status_error: provider overloaded" in str(error.error)
