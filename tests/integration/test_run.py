"""``chatload run`` as a process against the simulator: its report must equal what was sent."""

from __future__ import annotations

import csv
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest

from loadtest.runner.processes import SimProcess

RUN_TIMEOUT = 120


def profile(time_scale: float) -> dict[str, Any]:
    """Turns with a known profile: TTFT uniform in [60, 140] ms, 8 parts 5 ms apart.

    ``time_scale`` shrinks only Coder's retry backoff (1, 2, 4 ... 60 s).
    """
    return {
        "ttft_ms": {"dist": "uniform", "min": 60, "max": 140},
        "parts_per_turn": 8,
        "part_gap_ms": {"dist": "constant", "value": 5},
        "time_scale": time_scale,
        "rate_limit_per_minute": -1,
    }


#: Retries back off 1, 2, 4 ... 60 s: scaled to 50, 100, 200 ms ...
PROFILE = profile(0.05)
#: All 25 attempts fail: 1203 s of backoff, scaled to 0.6 s.
EXHAUSTING = profile(0.0005)


def scenario(tmp_path: Path, **load: Any) -> Path:
    body = {"users": 4, "spawn_rate": 4, "run_time": "5s", "stop_timeout": 20, **load}
    lines = ['name = "itest"', "[load]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in body.items()]
    lines += ["[chat]", "turns = 3", "think_time = [0.02, 0.05]", "turn_timeout = 30"]
    path = tmp_path / "itest.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class Sim:
    def __init__(self, era: str, config: dict[str, Any]) -> None:
        self.era = era
        self.token = secrets.token_urlsafe(18)
        self.process = SimProcess.start(era, self.token, config)
        self.url = self.process.url

    def counts(self) -> dict[str, Any]:
        totals: dict[str, Any] = httpx.get(f"{self.url}/__sim/counts", timeout=10).json()["totals"]
        return totals


@pytest.fixture
def sim(request: pytest.FixtureRequest) -> Iterator[Sim]:
    era, config = request.param
    server = Sim(era, {**PROFILE, **config})
    yield server
    server.process.stop()


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadtest.cli", "run", "--quiet", *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env={**os.environ, **(env or {})},
        check=False,
    )


def run_against(sim: Sim, path: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``chatload run`` of scenario ``path`` against ``sim``, its report in ``out``."""
    return run(
        "--host",
        sim.url,
        f"--token={sim.token}",
        *args,
        "--scenario",
        str(path),
        "--report-dir",
        str(out),
    )


def report(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / "report.json").read_text())
    return data


def assert_counts_match(rep: dict[str, Any], sent: dict[str, Any]) -> None:
    counts = rep["counts"]
    for ours, theirs in (
        ("frames", "frames"),
        ("events", "events"),
        ("bytes", "bytes"),
        ("pings", "pings"),
        ("retry_events", "retry_events"),
        ("error_events", "error_events"),
        ("turns_completed", "turns_completed"),
        ("turns_failed", "turns_failed"),
    ):
        assert counts[ours] == sent[theirs], f"{ours}: measured {counts[ours]}, sent {sent[theirs]}"
    assert counts["turns_started"] == sent["turns_started"]
    assert counts["turns_unfinished"] == 0


@pytest.mark.parametrize(
    "sim",
    [
        ("a", {"error_rate": 0.3, "error_retries": 2}),
        ("b", {**EXHAUSTING, "error_rate": 0.3, "error_retries": 25}),
    ],
    indirect=True,
    ids=["era-a-retry-then-recover", "era-b-retry-then-fail"],
)
def test_report_counts_equal_what_the_simulator_sent(sim: Sim, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = run_against(sim, scenario(tmp_path), out)
    sent = sim.counts()
    assert (out / "report.json").exists(), (result.returncode, result.stdout, result.stderr)
    rep = report(out)
    assert_counts_match(rep, sent)
    assert sent["retry_events"] > 0, "the profile injects provider errors"
    # Every retry is counted under its error's kind, or under "unknown".
    assert sum(rep["retries_by_kind"].values()) == sent["retry_events"]
    assert rep["run"]["complete"] is True
    assert rep["run"]["target"]["era"] == sim.era
    # No SLO given: any failed turn fails the run.
    assert result.returncode == (1 if sent["turns_failed"] else 0), result.stderr
    if sim.era == "b":
        assert sent["turns_failed"] > 0 and rep["counts"]["retry_exhausted"] == sent["turns_failed"]
        kinds = {(e["stage"], e["kind"]) for e in rep["errors"]}
        assert ("status_error", "overloaded") in kinds
    else:
        assert sent["turns_failed"] == 0 and rep["counts"]["retry_recovered"] > 0
    ttft = rep["latency_ms"]["time_to_first_output"]
    # On a busy machine a turn's output can come before its new stream connects: no TTFT.
    counts = rep["counts"]
    assert ttft["count"] + counts["turns_no_live_output"] == counts["turns_completed"]
    assert_ttft_bounded_by_what_was_sent(ttft, sent)
    for name in ("report.html", "summary.md", "timeseries.csv", "locust_stats.csv"):
        assert (out / name).stat().st_size > 0
    # Locust's own stats show every turn beside the REST calls: TTFT for each completed
    # turn, and the end to end of every turn, failed ones as failures.
    with (out / "locust_stats.csv").open() as stats:
        rows = {(row["Type"], row["Name"]): row for row in csv.DictReader(stats)}
    first = rows[("TURN", "time_to_first_output")]
    assert int(first["Request Count"]) == ttft["count"]
    ended = rows[("TURN", "time_to_terminal_status")]
    assert int(ended["Failure Count"]) == sent["turns_failed"]
    # A completed turn whose end came in a reconnect's snapshot (a busy machine) has no live
    # end to time, in report.json as in Locust's stats.
    live_ends = rep["latency_ms"]["time_to_terminal_status"]["count"]
    assert live_ends <= sent["turns_completed"]
    assert int(ended["Request Count"]) == live_ends + sent["turns_failed"]


def assert_ttft_bounded_by_what_was_sent(ttft: dict[str, Any], sent: dict[str, Any]) -> None:
    """Each turn's TTFT as measured spans the simulator's own accepted -> first output (the
    client starts its clock before the POST and stops it after the part arrives), so the
    measured extremes bound the sent ones from above; the upper slack only catches a wrong
    unit or a wrong start (the machine's speed is not what this checks)."""
    first = sent["first_output_ms"]
    assert first["count"] >= ttft["count"] > 0
    assert ttft["min"] >= first["min"] and ttft["max"] >= first["max"], (ttft, first)
    assert ttft["max"] <= first["max"] + 5000, (ttft, first)


def wait_for_progress(proc: subprocess.Popen[str], deadline_s: float = 60) -> str:
    """Read the run's live lines until one shows completed turns (the load is under way)."""
    assert proc.stderr is not None
    deadline = time.monotonic() + deadline_s
    seen = ""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
        if "streams open" in line and "turns/s   0.00" not in line:
            return seen
    raise AssertionError(f"no progress within {deadline_s} s:\n{seen}")


def pids_of_workers(parent: int) -> list[int]:
    out = subprocess.run(
        ["pgrep", "-P", str(parent), "-f", "loadtest.cli worker"],
        capture_output=True,
        text=True,
        check=False,
    )
    return [int(pid) for pid in out.stdout.split()]


@pytest.mark.parametrize("sim", [("a", {})], indirect=True)
def test_two_workers_merge_exactly(sim: Sim, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = run_against(sim, scenario(tmp_path), out, "--workers", "2", "-u", "6")
    assert result.returncode == 0, result.stderr
    rep = report(out)
    assert rep["run"]["workers"] == 2 and rep["run"]["complete"] is True
    sent = sim.counts()
    assert_counts_match(rep, sent)
    ttft, e2e = (
        rep["latency_ms"]["time_to_first_output"],
        rep["latency_ms"]["time_to_terminal_status"],
    )
    assert_ttft_bounded_by_what_was_sent(ttft, sent)
    # E2E adds at least the 7 gaps of 5 ms between the 8 parts to each turn's TTFT.
    assert e2e["min"] >= sent["first_output_ms"]["min"] + 7 * 5 and e2e["p50"] > ttft["p50"], e2e


@pytest.mark.slow  # long: make test-all (make test stays under 10 minutes on 2 cores)
@pytest.mark.parametrize("sim", [("b", {})], indirect=True)
def test_a_lost_worker_still_yields_an_incomplete_report(sim: Sim, tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadtest.cli",
            "run",
            "--host",
            sim.url,
            f"--token={sim.token}",
            "--workers",
            "2",
            "--scenario",
            str(scenario(tmp_path, run_time="10s")),
            "--report-dir",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_progress(proc)
        workers = pids_of_workers(proc.pid)
        assert len(workers) == 2, "two worker processes should be running"
        os.kill(workers[0], signal.SIGKILL)
        stdout, _stderr = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    rep = report(out)
    assert proc.returncode == 4, "a run that lost a worker is incomplete, whatever its SLOs"
    assert rep["run"]["complete"] is False
    assert any("worker" in reason for reason in rep["run"]["incomplete_reasons"])
    counts = rep["counts"]
    assert counts["turns_completed"] > 0  # the surviving worker's turns are all there
    # Every started turn is accounted for, the lost worker's in-flight ones as lost.
    ended = sum(counts[k] for k in ("turns_completed", "turns_failed", "turns_unfinished"))
    assert counts["turns_started"] == ended + counts["turns_lost"]
    assert "INCOMPLETE" in stdout


@pytest.mark.parametrize(
    "sim", [("a", {"ttft_ms": {"dist": "constant", "value": 300}})], indirect=True
)
def test_open_loop_measures_from_the_intended_start(sim: Sim, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = run_against(sim, scenario(tmp_path), out, "--arrival-rate", "8", "-t", "4s")
    assert result.returncode == 0, result.stderr
    rep = report(out)
    assert rep["run"]["load"] == {"mode": "open", "users": None, "arrival_rate": 8.0}
    lat = rep["latency_ms"]
    corrected, raw = lat["time_to_first_output"], lat["time_to_first_output_uncorrected"]
    counts = rep["counts"]
    live = counts["turns_completed"] - counts["turns_no_live_output"]
    assert corrected["count"] == raw["count"] == live > 10
    for key in ("p50", "p90", "p99", "max", "mean"):
        assert corrected[key] >= raw[key]
    assert corrected["mean"] > raw["mean"]
    lag = lat["schedule_lag"]
    assert lag["count"] == rep["counts"]["turns_started"] and lag["max"] > 0
    # The gap between the two equals the schedule lag, turn by turn, so on average too.
    assert corrected["mean"] - raw["mean"] == pytest.approx(lag["mean"], abs=0.05)
    assert_counts_match(rep, sim.counts())


@pytest.mark.slow  # long: make test-all (make test stays under 10 minutes on 2 cores)
@pytest.mark.parametrize("sim", [("b", {})], indirect=True)
def test_a_spike_shape_adds_users_for_its_window_and_loses_no_turn(
    sim: Sim, tmp_path: Path
) -> None:
    path = tmp_path / "spike.toml"
    path.write_text(
        'name = "spike-itest"\n[load]\nshape = "spike"\nusers = 2\nspike_users = 4\n'
        'spike_at_s = "2s"\nspike_s = "3s"\nspawn_rate = 50\nrun_time = "7s"\n'
        "stop_timeout = 20\n[chat]\nturns = 1000\nthink_time = [0.02, 0.05]\n"
    )
    out = tmp_path / "report"
    result = run(
        "--host", sim.url, f"--token={sim.token}", "--scenario", str(path), "--report-dir", str(out)
    )
    assert result.returncode == 0, result.stderr
    rep = report(out)
    # Users the shape stops after the spike finish their turn first: nothing is lost.
    assert_counts_match(rep, sim.counts())
    # Streams held, second by second: the base, then base + spike, then the base again.
    streams = [row["active_streams"] for row in rep["timeseries"] if row["active_streams"]]
    assert max(streams) == 6
    peak = [i for i, n in enumerate(streams) if n == 6]
    assert peak == list(range(peak[0], peak[-1] + 1)) and 2 <= len(peak) <= 4
    # A second sampled while users start or stop may show a count in between.
    assert streams[0] == 2 and 2 in streams[peak[-1] + 1 :]


@pytest.mark.parametrize("sim", [("a", {})], indirect=True)
def test_slo_pass_and_fail_set_the_exit_code(sim: Sim, tmp_path: Path) -> None:
    common = (
        "--host",
        sim.url,
        f"--token={sim.token}",
        "--scenario",
        str(scenario(tmp_path, run_time="2s", users=2)),
    )
    passed = run(
        *common,
        "--slo",
        "time_to_first_output.p95 < 5s",
        "--slo",
        "error_rate < 1%",
        "--report-dir",
        str(tmp_path / "pass"),
    )
    assert passed.returncode == 0, passed.stderr
    junit = tmp_path / "slo.xml"
    failed = run(
        *common,
        "--slo",
        "time_to_first_output.p50 < 1ms",
        "--slo",
        "error_rate < 50%",
        "--report-dir",
        str(tmp_path / "fail"),
        "--junit",
        str(junit),
    )
    assert failed.returncode == 1
    checks = report(tmp_path / "fail")["slo"]["checks"]
    assert checks[0]["passed"] is False and checks[0]["observed"] > 1
    assert "SLO FAIL" in failed.stdout
    # The same verdict for CI, one JUnit case per SLO (the file parses as XML).
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "1"
    first, second = suite.findall("testcase")
    assert first.get("name") == "time_to_first_output.p50 < 1ms"
    failure = first.find("failure")
    assert failure is not None and failure.get("message") == f"observed {checks[0]['observed']:g}"
    assert second.get("name") == "error_rate < 50%" and second.find("failure") is None


def test_bad_scenario_exits_2_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[load]\nuserz = 3\n")
    result = run("--scenario", str(bad), "--host", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert "load.userz" in result.stderr
    bad_slo = run("--slo", "error_rate < 5ms", "--host", "http://127.0.0.1:9")
    assert bad_slo.returncode == 2 and "error_rate" in bad_slo.stderr


def test_unreachable_host_exits_3(tmp_path: Path) -> None:
    result = run("--host", "http://127.0.0.1:9", "--token", "x", "--report-dir", str(tmp_path))
    assert result.returncode == 3
    assert "cannot reach http://127.0.0.1:9" in result.stderr


@pytest.mark.parametrize("sim", [("d", {})], indirect=True)
def test_wrong_token_exits_3_and_no_token_leaks(sim: Sim, tmp_path: Path) -> None:
    wrong = "wrong-" + secrets.token_urlsafe(12)
    refused = run("--host", sim.url, f"--token={wrong}", "--report-dir", str(tmp_path / "x"))
    assert refused.returncode == 3
    assert "refused" in refused.stderr and wrong not in refused.stderr + refused.stdout
    out = tmp_path / "ok"
    result = run(
        "--host",
        sim.url,
        "--scenario",
        str(scenario(tmp_path, run_time="2s", users=2)),
        "--report-dir",
        str(out),
        env={"CODER_SESSION_TOKEN": sim.token},
    )
    assert result.returncode == 0, result.stderr
    assert report(out)["run"]["target"]["era"] == "d"
    for path in out.iterdir():
        assert sim.token not in path.read_text(errors="replace"), path.name
    assert sim.token not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "sim", [("a", {"faults": {"drop_rate": 0.5}, "parts_per_turn": 20})], indirect=True
)
def test_dropped_streams_reconnect_without_counting_the_snapshot_twice(
    sim: Sim, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    result = run_against(sim, scenario(tmp_path, run_time="4s"), out)
    assert (out / "report.json").exists(), result.stderr[-3000:]
    rep = report(out)
    counts = rep["counts"]
    assert counts["stream_reconnects"] > 0 and counts["streams_closed_abnormally"] > 0
    # Reconnects resume every turn: none fails, and each completed turn's output is counted
    # once (the reconnect snapshot's messages are not new, its parts are not output).
    assert counts["turns_failed"] == 0 and counts["turns_unfinished"] == 0, result.stderr
    assert counts["turns_completed"] == sim.counts()["turns_completed"]
    assert rep["latency_ms"]["time_to_first_output"]["count"] <= counts["turns_completed"]
    assert {e["stage"] for e in rep["errors"]} == {"stream_closed"}


@pytest.mark.parametrize("sim", [("b", {})], indirect=True)
def test_stream_watchers_receive_every_event_too(sim: Sim, tmp_path: Path) -> None:
    path = scenario(tmp_path, run_time="4s", users=2)
    path.write_text(path.read_text().replace("[chat]", "[chat]\nwatchers_per_chat = 2"))
    out = tmp_path / "report"
    result = run(
        "--host", sim.url, f"--token={sim.token}", "--scenario", str(path), "--report-dir", str(out)
    )
    assert result.returncode == 0, result.stderr
    rep = report(out)
    sent = sim.counts()
    assert_counts_match(rep, sent)
    # Every frame to a watcher is counted too (the equality above); watchers opened streams
    # beyond the one each driven chat has.
    chats = rep["latency_ms"]["chat_create_latency"]["count"]
    assert rep["counts"]["streams_opened"] == sent["streams_opened"] > chats


@pytest.mark.parametrize("sim", [("b", {})], indirect=True)
def test_plain_locust_runs_the_locustfile(sim: Sim) -> None:
    """``locust -f loadtest/locustfile.py``: Locust's own CLI, settings from the deployment."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            "loadtest/locustfile.py",
            "--headless",
            "-u",
            "2",
            "-r",
            "2",
            "-t",
            "3s",
            "--host",
            sim.url,
            "--only-summary",
            "--chatload-scenario",
            "scenarios/smoke.toml",
        ],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
        env={**os.environ, "CODER_SESSION_TOKEN": sim.token},
    )
    # Locust exits 1 when any request failed: archive and every other call succeeded.
    assert result.returncode == 0, result.stderr[-3000:]
    assert "create_chat" in result.stdout + result.stderr
    assert sim.counts()["turns_completed"] > 0


@pytest.mark.parametrize(
    "workers", [0, pytest.param(2, marks=pytest.mark.slow)], ids=["local", "two-workers"]
)  # two workers: make test-all
def test_ctrl_c_to_the_process_group_drains_and_blames_no_one(workers: int, tmp_path: Path) -> None:
    """A real Ctrl-C: SIGINT to the terminal's whole process group, the embedded simulator
    and the workers included. chatload alone must see it: turns in flight finish."""
    out = tmp_path / "report"
    path = scenario(tmp_path, run_time="60s", users=4)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadtest.cli",
            "run",
            "--scenario",
            str(path),
            "--workers",
            str(workers),
            "--report-dir",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the group a terminal would signal
    )
    try:
        wait_for_progress(proc)
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 4, stderr[-3000:]
    rep = report(out)
    assert rep["run"]["complete"] is False
    assert rep["run"]["incomplete_reasons"] == ["interrupted by SIGINT"]
    counts = rep["counts"]
    assert counts["turns_completed"] > 0
    assert counts["turns_failed"] == 0 and counts["turns_unfinished"] == 0, rep["errors"]
    assert counts["turns_lost"] == 0 and rep["errors"] == []
    assert "Traceback" not in stderr, stderr[-3000:]
    assert "INCOMPLETE" in stdout


def test_an_unknown_slo_figure_exits_2_before_any_request(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        host = f"http://127.0.0.1:{listener.getsockname()[1]}"
        for expr, expected in (
            ("foo < 5", "unknown figure 'foo'"),
            ("time_to_first_output.p101 < 5s", "no statistic 'p101'"),
            ("time_to_frist_output.p95 < 5s", "did you mean time_to_first_output.p95"),
        ):
            result = run("--host", host, "--token=t", "--slo", expr)
            assert result.returncode == 2, result.stderr
            assert expected in result.stderr, result.stderr
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected: nothing was sent


def test_bad_flags_are_usage_errors_that_name_the_flag(tmp_path: Path) -> None:
    host = ("--host", "http://127.0.0.1:9", "--token=t")
    cases = (
        (("-u", "-5"), "-u/--users"),
        (("-u", "0"), "-u/--users"),
        (("-t", "0"), "-t/--run-time"),
        (("-t", "soon"), "-t/--run-time"),
        (("--workers", "-1"), "--workers"),
        (("--stop-timeout", "x"), "--stop-timeout"),
        (("--master",), "--expect-workers"),
        (("--expect-workers", "2"), "--master"),
        (("--master", "--expect-workers", "2", "--workers", "2"), "--workers"),
    )
    # A dozen processes that each start, check flags and exit: side by side, not in turn.
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = [pool.submit(run, *host, *args) for args, _ in cases]
        no_token = pool.submit(run, "--host", "http://127.0.0.1:9", env={"CODER_SESSION_TOKEN": ""})
        no_scheme = pool.submit(run, "--host", "coder.example.com", "--token=t")
        unreadable = pool.submit(run, *host, "--scenario", str(tmp_path))
    for (args, named), future in zip(cases, results, strict=True):
        result = future.result()
        assert result.returncode == 2, (args, result.stderr)
        assert named in result.stderr and "smoke.toml" not in result.stderr, result.stderr
    assert no_token.result().returncode == 2
    assert "no session token" in no_token.result().stderr
    assert no_scheme.result().returncode == 2 and "scheme" in no_scheme.result().stderr
    assert unreadable.result().returncode == 2 and str(tmp_path) in unreadable.result().stderr


@pytest.mark.parametrize(
    "sim",
    [("d", {"error_rate": 0.5, "error_retries": 2, "partial_output_ratio": 1.0})],
    indirect=True,
)
def test_era_d_output_thrown_away_by_retries_is_counted_exactly(sim: Sim, tmp_path: Path) -> None:
    """Retries after partial output: era D resets the preview; the client's episode counts,
    a watching tab's included, equal what the simulator sent, and kept output comes later
    than the first output."""
    out = tmp_path / "report"
    path = scenario(tmp_path)
    path.write_text(path.read_text().replace("[chat]", "[chat]\nwatchers_per_chat = 1"))
    result = run_against(sim, path, out)
    assert result.returncode == 0, result.stderr[-3000:]
    rep, sent = report(out), sim.counts()
    assert_counts_match(rep, sent)
    counts = rep["counts"]
    assert counts["preview_resets"] == sent["preview_resets"] > 0
    assert counts["parts_discarded"] == sent["parts_discarded"] > 0
    ttft = rep["latency_ms"]["time_to_first_output"]
    kept = rep["latency_ms"]["time_to_first_kept_output"]
    assert kept["count"] == ttft["count"]
    assert ttft["count"] + counts["turns_no_live_output"] == counts["turns_completed"]
    assert kept["mean"] > ttft["mean"] and kept["min"] >= ttft["min"]


@pytest.mark.parametrize(
    "sim",
    [("d", {"faults": {"close_rate": 0.5, "close_code": 1000}, "parts_per_turn": 20})],
    indirect=True,
)
def test_a_normal_close_mid_turn_is_a_reconnect_not_the_end(sim: Sim, tmp_path: Path) -> None:
    """Section 8.4: era D ends a failed stream session with a normal 1000 close; the client
    reconnects with after_id, and no turn fails or is counted twice."""
    out = tmp_path / "report"
    result = run_against(sim, scenario(tmp_path, run_time="4s"), out)
    assert result.returncode == 0, result.stderr[-3000:]
    rep = report(out)
    counts = rep["counts"]
    assert counts["stream_reconnects"] > 0 and counts["streams_closed_abnormally"] == 0
    assert counts["turns_failed"] == 0 and rep["errors"] == []
    assert counts["turns_completed"] == sim.counts()["turns_completed"]


INTEGRITY = ("seq_gaps", "seq_duplicates", "seq_out_of_order", "content_mismatches")
BROKEN_PARTS = {
    "error_rate": 0.3,
    "error_retries": 2,
    "partial_output_ratio": 1.0,
    # Each kind per part: ~0.5 a turn of each, so a busy machine's 35 turns leave none of a
    # kind with p ~ 1e-8 (at 4 %: ~2e-4).
    "faults": {"part_drop_rate": 0.08, "part_duplicate_rate": 0.08, "part_reorder_rate": 0.08},
}


@pytest.mark.parametrize(
    "sim", [("d", BROKEN_PARTS), ("b", BROKEN_PARTS)], indirect=True, ids=["era-d", "era-b"]
)
def test_every_integrity_break_the_simulator_made_is_counted_exactly(
    sim: Sim, tmp_path: Path
) -> None:
    """Retries after partial output and parts dropped, repeated and reordered: each
    integrity count (era D numbers its parts; era B has only the text to compare), and era
    D's episode counts, equal what the simulator delivered, and every turn it broke fails
    at stage ``integrity``."""
    out = tmp_path / "report"
    result = run_against(sim, scenario(tmp_path), out)
    assert result.returncode == 1, result.stderr[-3000:]  # failed turns, no SLO given
    rep, sent = report(out), sim.counts()
    integrity = rep["integrity"]
    for name in INTEGRITY:
        assert integrity[name] == sent["integrity"][name], name
    numbered = sim.era == "d"
    assert all(bool(integrity[name]) == numbered for name in INTEGRITY[:3])
    assert integrity["content_mismatches"] > 0
    counts = rep["counts"]
    assert counts["preview_resets"] == sent["preview_resets"]
    assert counts["parts_discarded"] == sent["parts_discarded"]
    assert (counts["preview_resets"] > 0) == numbered
    assert counts["turns_started"] == sent["turns_started"]
    ended = counts["turns_completed"] + counts["turns_failed"]
    assert ended == sent["turns_completed"] + sent["turns_failed"]
    broken = sum(row["count"] for row in rep["errors"] if row["stage"] == "integrity")
    assert 0 < broken == counts["turns_failed"] - sent["turns_failed"]
    assert 0 < integrity["turns_checked"] <= ended


@pytest.mark.parametrize("sim", [("d", {}), ("a", {})], indirect=True, ids=["era-d", "era-a"])
def test_watch_sockets_count_every_event_by_kind_and_pair_status_changes(
    sim: Sim, tmp_path: Path
) -> None:
    """Two tabs per user: each ``/chats/watch`` event the simulator delivered is counted, by
    kind (created, status_change, title_change), and status changes seen on both the watch
    and the chat stream give watch_lag samples."""
    out = tmp_path / "report"
    path = scenario(tmp_path, users=3, spawn_rate=3, run_time="3s")
    path.write_text(path.read_text().replace("[chat]", "[chat]\nwatch_sockets_per_user = 2"))
    result = run_against(sim, path, out)
    assert result.returncode == 0, result.stderr[-3000:]
    rep, sent = report(out), sim.counts()
    by_kind = rep["watch"]["events_by_kind"]
    assert by_kind == sent["watch_events"]
    assert {"created", "status_change", "title_change"} <= set(by_kind)
    assert rep["counts"]["watch_events"] == sum(sent["watch_events"].values())
    assert rep["watch"]["sockets_opened"] == rep["counts"]["watch_sockets_opened"] == 6
    lag = rep["latency_ms"]["watch_lag"]
    # Every turn ends with a status change both sockets of its user see.
    assert lag["count"] >= 2 * rep["counts"]["turns_completed"] > 0
    assert lag["min"] <= lag["p50"] <= lag["max"]


@pytest.mark.parametrize("sim", [("d", {"requires_action_ratio": 0.5})], indirect=True)
def test_requires_action_turns_are_answered_counted_and_timed(sim: Sim, tmp_path: Path) -> None:
    """Era D: half the turns stop for a tool only the client runs; each user answers with
    POST /tool-results after its tool time, every turn completes, and the report counts the
    turns, the posts and the watch's action_required events as the simulator saw them."""
    out = tmp_path / "report"
    path = scenario(tmp_path, run_time="3s")
    path.write_text(
        path.read_text().replace(
            "[chat]", '[chat]\nwatch_sockets_per_user = 1\nclient_tool_time = "50ms"'
        )
    )
    result = run_against(sim, path, out)
    assert result.returncode == 0, result.stderr[-3000:]
    rep, sent = report(out), sim.counts()
    counts = rep["counts"]
    assert counts["turns_failed"] == 0 and counts["turns_unfinished"] == 0
    assert counts["turns_requires_action"] == sent["actions_required"] > 0
    assert counts["tool_results_posted"] == sent["tool_results"] == sent["actions_required"]
    assert rep["latency_ms"]["time_to_action_required"]["count"] == sent["actions_required"]
    assert rep["latency_ms"]["tool_results_latency"]["count"] == sent["tool_results"]
    # All users share the test's one account: each tab sees every chat's event once it is
    # open (on a busy machine a tab may open after a first turn's), and counts what was sent.
    watched = rep["watch"]["events_by_kind"]["action_required"]
    assert watched == sent["watch_events"]["action_required"]
    assert 0 < watched <= 4 * sent["actions_required"]
    ttar = rep["latency_ms"]["time_to_action_required"]
    e2e = rep["latency_ms"]["time_to_terminal_status"]
    assert ttar["max"] < e2e["max"]  # the turn went on after its tool results


@pytest.mark.parametrize("sim", [("d", {"agent_limit": 1})], indirect=True)
def test_the_concurrent_agent_gate_queues_turns_and_users_time_their_wait(
    sim: Sim, tmp_path: Path
) -> None:
    """Section 8.7: with one slot, three users' turns wait queued_for_capacity; their tabs
    see capacity_change (queued, then admitted) and the report times the wait."""
    out = tmp_path / "report"
    path = scenario(tmp_path, users=3, spawn_rate=3, run_time="3s")
    path.write_text(path.read_text().replace("[chat]", "[chat]\nwatch_sockets_per_user = 1"))
    result = run_against(sim, path, out)
    assert result.returncode == 0, result.stderr[-3000:]
    rep, sent = report(out), sim.counts()
    changes = rep["watch"]["events_by_kind"].get("capacity_change", 0)
    assert changes == sent["watch_events"]["capacity_change"] > 0
    wait = rep["latency_ms"]["capacity_wait"]
    # Each tab sees every admission of the shared account's chats; a user times its own.
    assert 0 < wait["count"] <= changes
    assert wait["min"] > 0


@pytest.mark.parametrize("sim", [("d", {"tool_steps": 2, "workspaces": 2})], indirect=True)
def test_an_agents_steps_and_tools_are_counted_and_timed(sim: Sim, tmp_path: Path) -> None:
    """The simulator's turns make two tool calls each (protocol §10.4: each step ends in its
    call, then the answer): 3 committed steps and 2 timed execute calls a turn, in the chats'
    workspaces, a typical turn drawn; watch sockets and follow_subagents on, so the sub-agent
    wiring runs (no child comes)."""
    path = scenario(tmp_path, run_time="4s", users=2)
    path.write_text(
        path.read_text()
        + "watch_sockets_per_user = 1\nfollow_subagents = true\n"
        + '[target]\nworkspaces = "scaletest-"\n'
    )
    out = tmp_path / "report"
    result = run_against(sim, path, out)
    assert result.returncode == 0, result.stderr[-3000:]
    rep = report(out)
    counts, completed = rep["counts"], rep["counts"]["turns_completed"]
    assert completed > 0 and counts["turns_failed"] == 0
    assert counts["tool_calls"] == 2 * completed and counts["tool_errors"] == 0
    assert rep["tool_calls_by_name"] == {"execute": 2 * completed}
    assert rep["latency_ms"]["tool_time"]["count"] == 2 * completed
    assert rep["tool_time_by_name"]["execute"]["count"] == 2 * completed
    steps = rep["distributions"]["steps_per_turn"]
    assert (steps["min"], steps["max"], steps["count"]) == (3, 3, completed)
    # Steps 2..3 of each turn are timed from the commit before them.
    assert rep["latency_ms"]["step_time_to_first_output"]["count"] == 2 * completed
    turn = rep["typical_turn"]
    assert turn["steps"] == 3 and [s["kind"] for s in turn["segments"]].count("tool") == 2
    assert rep["run"]["workspaces"] == 2
    assert counts["subagents_spawned"] == 0 and "agents: steps per turn" in result.stdout
    assert 'data-plot="typical_turn"' in (out / "report.html").read_text()
