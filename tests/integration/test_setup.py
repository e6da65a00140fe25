"""``setup`` -> ``run`` -> ``teardown``: load generator, simulated Coder and mock LLM, all on
127.0.0.1, as the three tiers of a production capacity check."""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadtest.runner.processes import SimProcess

TIMEOUT = 120
LLM_KEY = "sk-chatload-" + secrets.token_hex(8)


def chatload(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadtest.cli", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env={**os.environ, **(env or {})},
    )


class MockLLM:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "loadtest.cli",
                "mock-llm",
                "--port",
                "0",
                "--ttft",
                "0.02",
                "--tokens-per-s",
                "0",
                "--output-tokens",
                "10",
                "--fault-503",
                "0.25",
                "--seed",
                "7",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.search(r"(http://\S+/v1)", line)
        assert match, f"mock-llm did not start: {line!r}"
        self.url = match.group(1)

    def counts(self) -> dict[str, Any]:
        counts: dict[str, Any] = httpx.get(self.url.removesuffix("/v1") + "/__mock/counts").json()
        return counts

    def stop(self) -> tuple[str, str]:
        self.proc.terminate()
        out, err = self.proc.communicate(timeout=10)
        return out, err


@pytest.fixture
def tiers(request: pytest.FixtureRequest) -> Iterator[tuple[SimProcess, MockLLM, str]]:
    token = secrets.token_urlsafe(18)
    mock = MockLLM()
    # The chat daemon takes a new chat up 50 ms after it is posted (Coder polls every second),
    # so a turn's retries nearly always happen while its stream is open.
    sim = SimProcess.start(
        request.param,
        token,
        {
            "acquire_ms": {"dist": "constant", "value": 50},
            "time_scale": 0.01,
            "rate_limit_per_minute": 512,
        },
    )
    yield sim, mock, token
    sim.stop()
    mock.stop()


def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "tiers.toml"
    path.write_text(
        'name = "tiers"\n[load]\nusers = 3\nspawn_rate = 3\nrun_time = "4s"\nstop_timeout = 20\n'
        "[chat]\nturns = 2\nthink_time = [0.01, 0.05]\n"
        "archive = false  # teardown archives them\n"
    )
    return path


@pytest.mark.parametrize(
    "tiers",
    [*(pytest.param(era, marks=pytest.mark.slow) for era in "abc"), "d"],  # a-c: make test-all
    indirect=True,
)
def test_setup_run_teardown_through_the_mock_llm(
    tiers: tuple[SimProcess, MockLLM, str], tmp_path: Path
) -> None:
    sim, mock, token = tiers
    setup_file = tmp_path / "setup.json"
    setup = chatload(
        "setup",
        "--host",
        sim.url,
        "--llm-url",
        mock.url,
        "--llm-api-key",
        LLM_KEY,
        "--users",
        "2",
        "--out",
        str(setup_file),
        env={"CODER_SESSION_TOKEN": token},
    )
    assert setup.returncode == 0, setup.stderr
    assert stat.S_IMODE(setup_file.stat().st_mode) == 0o600
    saved = json.loads(setup_file.read_text())
    assert len(saved["tokens"]) == 2 and token not in saved["tokens"]
    before = httpx.get(f"{sim.url}/__sim/state").json()
    assert saved["created"]["provider_id"] in before["providers"]
    # Setup waited for a probe chat through the new provider (section 8.2), then archived it.
    assert "probe chat answered" in setup.stdout
    assert before["unarchived_chats"] == 0
    httpx.post(f"{sim.url}/__sim/reset")
    httpx.post(f"{mock.url.removesuffix('/v1')}/__mock/reset")

    out = tmp_path / "report"
    run = chatload(
        "run",
        "--quiet",
        "--setup",
        str(setup_file),
        "--scenario",
        str(scenario(tmp_path)),
        "--report-dir",
        str(out),
    )
    assert run.returncode == 0, run.stderr
    report = json.loads((out / "report.json").read_text())
    sent = httpx.get(f"{sim.url}/__sim/counts").json()["totals"]
    llm = mock.counts()
    faults = sum(llm["faults"].values())
    assert faults > 0, "the mock injected retryable 503s"
    # Every injected fault was retried by the simulator, and chatload counted each retry event
    # it delivered live. A retry made before the turn's stream was open (its first attempt
    # failed within the stream's dial, on a busy machine) reaches the stream only as the chat's
    # retry state in the connect snapshot: not a new retry, so neither side counts it.
    assert sent["llm_retries"] == faults
    assert report["counts"]["retry_events"] == sent["retry_events"]
    assert 0 < sent["retry_events"] <= faults
    assert (
        report["counts"]["turns_completed"] == sent["turns_completed"] == llm["streams_completed"]
    )
    assert (
        report["counts"]["frames"] == sent["frames"]
        and report["counts"]["events"] == sent["events"]
    )
    assert report["counts"]["http_errors"] == 0  # users' tokens did not ask to bypass (428)

    mid = httpx.get(f"{sim.url}/__sim/state").json()
    assert mid["unarchived_chats"] > 0
    first = chatload("teardown", "--setup", str(setup_file))
    assert first.returncode == 0, first.stderr
    after = httpx.get(f"{sim.url}/__sim/state").json()
    assert after["unarchived_chats"] == 0
    assert saved["created"]["provider_id"] not in after["providers"]
    assert saved["created"]["model_config_id"] not in after["models"]
    assert after["users"] == before["users"] - 2
    again = chatload("teardown", "--setup", str(setup_file))
    assert again.returncode == 0, again.stderr
    assert "archived 0 chats" in again.stdout

    secrets_seen = [token, LLM_KEY, *saved["tokens"]]
    outputs = setup.stdout + setup.stderr + run.stdout + run.stderr + first.stdout + first.stderr
    mock_out, mock_err = mock.stop()
    outputs += mock_out + mock_err
    for path in out.iterdir():
        outputs += path.read_text(errors="replace")
    for secret in secrets_seen:
        assert secret not in outputs


@pytest.mark.parametrize("tiers", ["d"], indirect=True)
def test_setup_tells_a_devel_era_d_build_by_its_routes(
    tiers: tuple[SimProcess, MockLLM, str], tmp_path: Path
) -> None:
    """A ``-devel`` version says nothing of the era (section 8.2): setup probes
    ``/api/experimental/chats`` (404 in D) and configures D's AI providers."""
    sim, mock, token = tiers
    version = "v2.38.0-devel+abc"
    httpx.patch(f"{sim.url}/__sim/config", json={"build_version": version})
    setup_file = tmp_path / "setup.json"
    setup = chatload(
        "setup",
        "--host",
        sim.url,
        "--llm-url",
        mock.url,
        "--out",
        str(setup_file),
        env={"CODER_SESSION_TOKEN": token},
    )
    assert setup.returncode == 0, setup.stderr
    saved = json.loads(setup_file.read_text())
    assert (saved["era"], saved["server_version"]) == ("d", version)
    owner = {"Coder-Session-Token": token}
    made = httpx.get(f"{sim.url}/api/v2/ai/providers/chatload-mock-llm", headers=owner).json()
    assert made["id"] == saved["created"]["provider_id"]
    torn = chatload("teardown", "--setup", str(setup_file))
    assert torn.returncode == 0, torn.stderr
    assert made["id"] not in httpx.get(f"{sim.url}/__sim/state").json()["providers"]


def test_setup_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "setup.json"
    path.write_text("{}")
    path.chmod(0o644)
    result = chatload("run", "--setup", str(path))
    assert result.returncode == 2 and "readable by others" in result.stderr


@pytest.mark.parametrize("tiers", ["b"], indirect=True)
def test_first_user_bootstrap_on_a_fresh_deployment(
    tiers: tuple[SimProcess, MockLLM, str], tmp_path: Path
) -> None:
    _, mock, _ = tiers
    fresh = SimProcess.start("b", "", {})  # no token: no user exists yet
    try:
        out = tmp_path / "setup.json"
        made = chatload(
            "setup",
            "--host",
            fresh.url,
            "--first-user",
            "admin@example.com",
            "--llm-url",
            mock.url,
            "--out",
            str(out),
            env={"CHATLOAD_FIRST_USER_PASSWORD": "a-strong-password-42"},
        )
        assert made.returncode == 0, made.stderr
        assert "created the first user" in made.stdout and "no load-test users" in made.stdout
        saved = json.loads(out.read_text())
        assert saved["owner_only"] is True and saved["tokens"] == [saved["owner_token"]]
        again = chatload(
            "setup",
            "--host",
            fresh.url,
            "--first-user",
            "admin@example.com",
            "--llm-url",
            mock.url,
            "--out",
            str(tmp_path / "2.json"),
        )
        assert again.returncode == 3 and "already has its first user" in again.stderr
    finally:
        fresh.stop()


@pytest.mark.parametrize("tiers", ["a"], indirect=True)
def test_setup_says_how_to_turn_chats_on(tiers: tuple[SimProcess, MockLLM, str]) -> None:
    sim, mock, token = tiers
    httpx.patch(f"{sim.url}/__sim/config", json={"agents_experiment": False})
    result = chatload(
        "setup", "--host", sim.url, "--llm-url", mock.url, env={"CODER_SESSION_TOKEN": token}
    )
    assert result.returncode == 3
    assert "'agents' experiment" in result.stderr and "CODER_EXPERIMENTS=agents" in result.stderr
