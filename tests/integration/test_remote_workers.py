"""Workers on other machines: ``chatload run --master`` and ``chatload worker``.

The machines are network namespaces the test makes (``ip netns``), each with its own address
on a bridge of its own, with the simulator on the bridge's address: traffic goes only to
addresses this test made. Where namespaces cannot be made (not root, no ``ip``), those tests
skip and say why. A worker of another version is refused on 127.0.0.1, namespaces or not.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadtest import __version__
from loadtest.runner.processes import SimProcess, free_port
from tests.integration.test_run import wait_for_progress

TIMEOUT_S = 120
#: Turns with a known, quick profile (as test_run's).
PROFILE = {
    "ttft_ms": {"dist": "uniform", "min": 60, "max": 140},
    "parts_per_turn": 8,
    "part_gap_ms": {"dist": "constant", "value": 5},
    "rate_limit_per_minute": -1,
}


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


@dataclass
class Lab:
    """A bridge with the simulator's address, and one namespace per machine on it."""

    bridge: str
    prefix: str  # "10.X.Y."
    namespaces: dict[str, str]  # name -> address

    @property
    def sim_address(self) -> str:
        return self.prefix + "1"

    def exec(self, name: str, command: list[str], **kwargs: Any) -> subprocess.Popen[str]:
        """``command`` in namespace ``name``: its process is the command's own (ip execs)."""
        return subprocess.Popen(["ip", "netns", "exec", name, *command], text=True, **kwargs)

    def pull_the_plug(self, name: str) -> None:
        """The machine is gone: every process in it killed, its namespace deleted."""
        pids = subprocess.run(
            ["ip", "netns", "pids", name], capture_output=True, text=True, check=False
        ).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def _lab_or_skip() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (ip netns add)")
    if shutil.which("ip") is None:
        pytest.skip("the 'ip' command (iproute2) is not installed")
    tag = secrets.token_hex(2)
    bridge = f"clbr{tag}"
    prefix = f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(250)}."
    lab = Lab(bridge, prefix, {})
    try:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("addr", "add", f"{prefix}1/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        for host, role in enumerate(("master", "w1", "w2"), start=2):
            name = f"cl{tag}{role}"
            _ip("netns", "add", name)
            lab.namespaces[name] = f"{prefix}{host}"
            _ip(
                "link",
                "add",
                f"clv{tag}{role}",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                name,
            )
            _ip("link", "set", f"clv{tag}{role}", "master", bridge, "up")
            _ip("-n", name, "link", "set", "lo", "up")
            _ip("-n", name, "addr", "add", f"{prefix}{host}/24", "dev", "eth0")
            _ip("-n", name, "link", "set", "eth0", "up")
    except subprocess.CalledProcessError as exc:
        _teardown(lab)
        pytest.skip(f"cannot make network namespaces here: {exc.stderr.decode().strip()}")
    try:
        yield lab
    finally:
        _teardown(lab)


def _teardown(lab: Lab) -> None:
    for name in lab.namespaces:
        lab.pull_the_plug(name)
    subprocess.run(["ip", "link", "del", lab.bridge], capture_output=True, check=False)


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from _lab_or_skip()


def _scenario(tmp_path: Path, run_time: str) -> Path:
    path = tmp_path / "remote.toml"
    path.write_text(
        'name = "remote"\n[load]\nusers = 6\nspawn_rate = 6\n'
        f'run_time = "{run_time}"\nstop_timeout = 20\n'
        "[chat]\nturns = 3\nthink_time = [0.02, 0.05]\nturn_timeout = 30\n"
    )
    return path


def _chatload(*args: str) -> list[str]:
    return [sys.executable, "-m", "loadtest.cli", *args]


def _sim_counts(url: str) -> dict[str, Any]:
    totals: dict[str, Any] = httpx.get(f"{url}/__sim/counts", timeout=10).json()["totals"]
    return totals


def _start_master_and_workers(
    lab: Lab, tmp_path: Path, run_time: str
) -> tuple[SimProcess, subprocess.Popen[str], dict[str, subprocess.Popen[str]]]:
    token = secrets.token_urlsafe(18)
    sim = SimProcess.start("d", token, PROFILE, host=lab.sim_address)
    master_ns, *worker_ns = lab.namespaces
    master_address = lab.namespaces[master_ns]
    master = lab.exec(
        master_ns,
        _chatload(
            "run",
            "--master",
            "--expect-workers",
            "2",
            "--master-bind-host",
            master_address,
            "--master-bind-port",
            "5557",
            "--host",
            sim.url,
            f"--token={token}",
            "--scenario",
            str(_scenario(tmp_path, run_time)),
            "--report-dir",
            str(tmp_path / "report"),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    workers = {
        name: lab.exec(
            name,
            _chatload("worker", "--master-host", master_address, "--master-port", "5557"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for name in worker_ns
    }
    return sim, master, workers


def _finish(master: subprocess.Popen[str], workers: dict[str, subprocess.Popen[str]]) -> str:
    """The master's stderr once it and its workers ended."""
    try:
        _, err = master.communicate(timeout=TIMEOUT_S)
        for proc in workers.values():
            proc.wait(timeout=30)
        return err
    finally:
        for proc in [master, *workers.values()]:
            if proc.poll() is None:
                proc.kill()


@pytest.mark.slow  # long: make test-all (make test stays under 10 minutes on 2 cores)
def test_two_workers_on_other_machines_merge_exactly(lab: Lab, tmp_path: Path) -> None:
    sim, master, workers = _start_master_and_workers(lab, tmp_path, "6s")
    try:
        err = _finish(master, workers)
        sent = _sim_counts(sim.url)
    finally:
        sim.stop()
    assert master.returncode == 0, err[-3000:]
    assert all(proc.returncode == 0 for proc in workers.values())
    rep = json.loads((tmp_path / "report" / "report.json").read_text())
    run = rep["run"]
    assert run["complete"] is True and run["workers"] == 2
    # The report names each worker by its machine's address.
    master_ns = next(iter(lab.namespaces))
    addresses = {address for name, address in lab.namespaces.items() if name != master_ns}
    assert {node["address"] for node in run["worker_nodes"]} == addresses
    assert all(node["final"] for node in run["worker_nodes"])
    counts = rep["counts"]
    assert counts["turns_completed"] > 0
    for key in ("frames", "events", "bytes", "turns_completed", "turns_failed", "error_events"):
        assert counts[key] == sent[key], f"{key}: measured {counts[key]}, sent {sent[key]}"


@pytest.mark.slow  # long: make test-all (make test stays under 10 minutes on 2 cores)
def test_a_lost_machine_leaves_the_report_incomplete_naming_it(lab: Lab, tmp_path: Path) -> None:
    sim, master, workers = _start_master_and_workers(lab, tmp_path, "12s")
    doomed = list(workers)[1]
    try:
        wait_for_progress(master)
        lab.pull_the_plug(doomed)
        err = _finish(master, workers)
    finally:
        sim.stop()
    assert master.returncode == 4, err[-3000:]
    run = json.loads((tmp_path / "report" / "report.json").read_text())["run"]
    assert run["complete"] is False
    lost = lab.namespaces[doomed]
    assert any(lost in reason for reason in run["incomplete_reasons"]), run["incomplete_reasons"]
    survivor = next(node for node in run["worker_nodes"] if node["address"] != lost)
    assert survivor["final"] is True


def _worker_of_version(version: str, port: int) -> list[str]:
    """``chatload worker`` as a build of another version would run it."""
    code = (
        "import sys, loadtest; loadtest.__version__ = sys.argv[1]; "
        "from loadtest.cli import main; sys.exit(main(sys.argv[2:]))"
    )
    args = ["worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
    return [sys.executable, "-c", code, version, *args]


@pytest.mark.slow  # long: make test-all (make test stays under 10 minutes on 2 cores)
def test_a_worker_of_another_version_is_refused(tmp_path: Path) -> None:
    port = free_port()
    master = subprocess.Popen(
        _chatload(
            "run",
            "--quiet",
            "--master",
            "--expect-workers",
            "1",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--scenario",
            str(_scenario(tmp_path, "3s")),
            "--report-dir",
            str(tmp_path / "report"),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stranger = subprocess.run(
            _worker_of_version("0.0.0-other", port),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        assert stranger.returncode == 2, stranger.stderr
        assert "refused by the master" in stranger.stderr
        assert "runs chatload 0.0.0-other" in stranger.stderr
        # The run goes on with a worker of its own version.
        worker = subprocess.run(
            _chatload("worker", "--master-host", "127.0.0.1", "--master-port", str(port)),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        _, err = master.communicate(timeout=TIMEOUT_S)
    finally:
        if master.poll() is None:
            master.kill()
    assert worker.returncode == 0, worker.stderr
    assert master.returncode == 0, err[-3000:]
    assert "refused worker at 127.0.0.1" in err and "0.0.0-other" in err
    run = json.loads((tmp_path / "report" / "report.json").read_text())["run"]
    assert [node["version"] for node in run["worker_nodes"]] == [__version__]
