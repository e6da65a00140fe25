"""A simulated Coder cluster (``chatload sim --replicas``) on real PostgreSQL and NATS, and
``chatload run`` across its replicas: what crosses replicas arrives whole, and is counted."""

from __future__ import annotations

import contextlib
import json
import secrets
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadtest.client.preflight import inspect_target
from loadtest.client.rest import ChatClient
from loadtest.protocol.notify import NOTIFY_PAYLOAD_LIMIT
from tests.integration.pubsub_servers import nats_url, postgres_url  # noqa: F401
from tests.integration.test_run import report, run

TURNS = ("--ttft", "20", "--part-gap", "5", "--parts-per-turn", "8", "--rate-limit", "-1")


class Cluster:
    """A running ``chatload sim --replicas N`` and the URL of each replica."""

    def __init__(self, replicas: int, *args: str) -> None:
        self.token = secrets.token_urlsafe(18)
        command = [sys.executable, "-m", "loadtest.cli", "sim", "--replicas", str(replicas)]
        command += ["--port", "0", f"--token={self.token}", *TURNS, *args]
        # Its log goes to a file: a pipe nobody reads could fill and stall the cluster.
        self.log = tempfile.NamedTemporaryFile(prefix="chatload-cluster-", suffix=".log")  # noqa: SIM115 (closed by stop)
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.log, text=True)
        assert self.process.stdout is not None
        self.urls: list[str] = []
        deadline = time.monotonic() + 90
        while len(self.urls) < replicas and time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 5)
            if not ready:
                continue
            line = self.process.stdout.readline()
            if not line:
                break
            assert "listening on" in line, line
            self.urls.append(line.split()[4])
        if len(self.urls) < replicas:
            log = self.stop()
            raise RuntimeError(f"cluster did not start: {self.urls} {log[-3000:]}")

    def counts(self, index: int) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.urls[index]}/__sim/counts", timeout=10).json()
        return data

    def stderr(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        err = self.stderr()
        self.log.close()
        return err


def scenario(tmp_path: Path, users: int = 6, run_time: str = "5s", **chat: Any) -> Path:
    lines = [
        'name = "replicas"',
        "[load]",
        f"users = {users}",
        f"spawn_rate = {users * 2}",
        f'run_time = "{run_time}"',
        "stop_timeout = 20",
        "[chat]",
        "turns = 100",
        'think_time = "0.1s"',
        "turn_timeout = 30",
        *(f"{key} = {json.dumps(value)}" for key, value in chat.items()),
    ]
    path = tmp_path / "replicas.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_on(cluster: Cluster, path: Path, out: Path) -> dict[str, Any]:
    done = run(
        f"--host={','.join(cluster.urls)}",
        f"--token={cluster.token}",
        "--scenario",
        str(path),
        "--report-dir",
        str(out),
    )
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    return report(out)


@pytest.fixture(params=["postgres", "nats"])
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    server = Cluster(3, "--pubsub", request.param)
    yield server
    server.stop()


def test_a_run_across_three_replicas_adds_up_and_arrives_whole(
    cluster: Cluster, tmp_path: Path
) -> None:
    path = scenario(tmp_path, watchers_per_chat=1, watch_sockets_per_user=1)
    rep = run_on(cluster, path, tmp_path / "out")
    sent = [cluster.counts(i) for i in range(3)]
    # Watch sockets sit on another replica than their user's chats: what they got crossed
    # the pubsub on chat:owner:<id>.
    watched = sum(sum(s["totals"]["watch_events"].values()) for s in sent)
    assert rep["counts"]["watch_events"] == watched > 0
    assert rep["latency_ms"]["watch_lag"]["count"] > 0
    counts = rep["counts"]
    for name, theirs in (
        ("frames", "frames"),
        ("events", "events"),
        ("streams_opened", "streams_opened"),
    ):
        assert counts[name] == sum(s["totals"][theirs] for s in sent), name
    for replica, mine in zip(rep["replicas"], sent, strict=True):
        assert replica["frames"] == mine["totals"]["frames"] > 0
        assert replica["events"] == mine["totals"]["events"]
    assert counts["turns_completed"] == sum(s["totals"]["turns_completed"] for s in sent) > 0
    assert counts["turns_failed"] == 0
    integrity = rep["integrity"]
    assert integrity["turns_checked"] > 0
    assert integrity["seq_gaps"] == integrity["seq_duplicates"] == 0
    assert integrity["seq_out_of_order"] == integrity["content_mismatches"] == 0, [
        (s["totals"]["integrity"], s["replica"]) for s in sent
    ]
    lag = rep["latency_ms"]["cross_replica_lag"]
    assert lag["count"] > 0 and lag["p50"] > 0, lag
    for mine in sent:
        assert mine["replica"]["notifies_published"] > 0
        assert 0 < mine["replica"]["notify_bytes_max"] < NOTIFY_PAYLOAD_LIMIT


@pytest.mark.slow  # long: make test-all (make test stays under 10 minutes on 2 cores)
def test_relay_faults_are_counted_as_the_replicas_broke_them(tmp_path: Path) -> None:
    cluster = Cluster(
        2, "--pubsub", "postgres", "--relay-drop-rate", "0.05", "--relay-duplicate-rate", "0.05",
        "--notify-delay-ms", "5",
    )  # fmt: skip
    try:
        path = scenario(tmp_path, users=4, watchers_per_chat=1, watcher_placement="other")
        rep = run_on(cluster, path, tmp_path / "out")
        sent = [cluster.counts(i) for i in range(2)]
    finally:
        cluster.stop()
    integrity = rep["integrity"]
    for name in ("seq_gaps", "seq_duplicates", "content_mismatches"):
        broke = sum(s["totals"]["integrity"][name] for s in sent)
        assert integrity[name] == broke, (name, integrity, [s["totals"]["integrity"] for s in sent])
        # ... and each replica's streams showed what that replica broke.
        for replica, mine in zip(rep["replicas"], sent, strict=True):
            assert replica["integrity"][name] == mine["totals"]["integrity"][name], name
    dropped = sum(s["replica"]["relay_parts_dropped"] for s in sent)
    duplicated = sum(s["replica"]["relay_parts_duplicated"] for s in sent)
    assert dropped > 0 and duplicated > 0
    # Late notifies (5 ms each) lose nothing: the relay's commit marks keep the order.
    assert all(s["replica"]["notifies_delayed"] > 0 for s in sent)
    assert integrity["seq_gaps"] == dropped and integrity["seq_duplicates"] == duplicated
    # A copy is dropped by its seq; only a lost delta changes a step's text.
    assert 0 < integrity["content_mismatches"] <= dropped


#: The killed-replica run's length (its checks count on few turns posted after the crash).
RUN_S = 9


@pytest.mark.slow  # long: make test-all (make test stays under 10 minutes on 2 cores)
def test_a_killed_replicas_sockets_reconnect_and_its_chats_finish_elsewhere(
    tmp_path: Path,
) -> None:
    cluster = Cluster(3, "--pubsub", "postgres", "--lease", "1")
    try:
        path = scenario(
            tmp_path, users=6, run_time=f"{RUN_S}s", watchers_per_chat=1, max_reconnects=6
        )
        out = tmp_path / "out"
        load = subprocess.Popen(
            [
                sys.executable, "-m", "loadtest.cli", "run", "--quiet",
                f"--host={','.join(cluster.urls)}", f"--token={cluster.token}",
                "--scenario", str(path), "--report-dir", str(out),
            ],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        # Crash replica 1 only once the load is under way on it (turns done, streams held),
        # however long a busy machine takes to get there, and early enough in the run for
        # the survivors to take its chats over (lease 1 s) before the run ends.
        deadline = time.monotonic() + RUN_S - 3
        held = 0
        while load.poll() is None and time.monotonic() < deadline:
            mine = cluster.counts(1)
            held = mine["replica"]["streams_open"]
            if mine["totals"]["turns_completed"] >= 10 and held > 0:
                break
            time.sleep(0.2)  # a poll interval, not a bound
        else:
            load.kill()
            pytest.fail(f"the load never got going on replica 1 within its first {RUN_S - 3} s")
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(f"{cluster.urls[1]}/__sim/crash", timeout=5)
        stdout, stderr = load.communicate(timeout=120)
        assert load.returncode in (0, 1), stdout[-3000:] + stderr[-3000:]
        survivors = [cluster.counts(i) for i in (0, 2)]
    finally:
        log = cluster.stop()
    rep = report(out)
    counts = rep["counts"]
    # Every socket the dead replica held came back elsewhere, without a close frame.
    assert held > 0 and counts["reconnects"] == held, (held, counts, rep["reconnects_by_cause"])
    assert rep["reconnects_by_cause"] == {"error": held}
    assert rep["latency_ms"]["reconnect_time"]["count"] == held
    # Each reconnected stream's snapshot (after_id) held what the dead replica had committed.
    assert counts["failover_loss"] == 0
    assert sum(s["replica"]["chats_taken_over"] for s in survivors) > 0, log[-2000:]
    # Its chats were taken over and every turn ended: the ones in flight ran again on a
    # survivor, messages posted meanwhile waited for one.
    # (A REST call in flight to the replica as it died has no answer: its turn fails.)
    cut = sum(
        row["count"]
        for row in rep["errors"]
        if row["stage"] in ("create_chat", "create_message") and row["status_code"] is None
    )
    assert counts["turns_failed"] == cut and counts["turns_unfinished"] == 0, [
        (row["stage"], row["message"]) for row in rep["errors"]
    ]
    assert counts["turns_completed"] > 0


@pytest.mark.slow  # long: make test-all (make test stays under 10 minutes on 2 cores)
def test_a_legacy_replica_sees_the_error_text_only(tmp_path: Path) -> None:
    """A rolling deploy: replica 2 is of the previous version. The same failed turn reaches
    a stream on replica 1 as Coder's structured ChatError, and on replica 2 as the legacy
    string, which a client reads as a generic error."""
    cluster = Cluster(
        3, "--pubsub", "nats", "--legacy-replicas", "1", "--error-rate", "1",
        "--error-kind", "auth", "--acquire", "400",
    )  # fmt: skip
    try:
        target = inspect_target(cluster.urls[0], [cluster.token])
        client = ChatClient(cluster.urls[0], cluster.token, target.era)
        chat, _ = client.create_chat("hello", target.organizations[0])
        client.close()
        errors = _stream_errors(cluster.urls, chat.id, cluster.token)
        out = tmp_path / "out"
        path = scenario(tmp_path, users=6, run_time="4s", watchers_per_chat=2)
        rep = run_on(cluster, path, out)
    finally:
        cluster.stop()
    worker, new, legacy = errors
    assert worker == new and new["kind"] == "auth" and new["message"]
    assert legacy == {"message": new["message"], "kind": "generic"}
    kinds = {row["kind"] for row in rep["errors"] if row["stage"] == "status_error"}
    assert {"auth", "generic"} <= kinds, rep["errors"]


def _stream_errors(urls: list[str], chat_id: str, token: str) -> list[dict[str, Any]]:
    """The first ``error`` event each replica's stream of the chat gets (all open before
    the turn fails: the simulator waits 400 ms before it calls the LLM)."""
    from websockets.sync.client import connect

    headers = {"Coder-Session-Token": token}
    sockets = [
        connect(
            url.replace("http://", "ws://") + f"/api/v2/chats/{chat_id}/stream",
            additional_headers=headers,
            open_timeout=10,
            legacy=True,
        )
        for url in urls
    ]
    found: list[dict[str, Any]] = []
    try:
        for url, ws in zip(urls, sockets, strict=True):
            deadline = time.monotonic() + 20
            error: dict[str, Any] | None = None
            while error is None and time.monotonic() < deadline:
                for event in json.loads(ws.recv(timeout=20)):
                    if event["type"] == "error" and error is None:
                        error = event["error"]
            assert error is not None, f"no error event on {url}"
            found.append(error)
    finally:
        for ws in sockets:
            ws.close()
    return found


@pytest.mark.slow  # long: make test-all (make test stays under 10 minutes on 2 cores)
def test_an_edit_refreshes_streams_on_every_replica(tmp_path: Path) -> None:
    """chatd's edit: the worker truncates the history and publishes full_refresh; a stream
    on another replica gets history_reset and the whole history again, and stays whole."""
    cluster = Cluster(2, "--pubsub", "postgres")
    try:
        path = scenario(tmp_path, users=4, watchers_per_chat=1, edit_ratio=0.4)
        rep = run_on(cluster, path, tmp_path / "out")
        sent = [cluster.counts(i) for i in range(2)]
    finally:
        cluster.stop()
    mirrored = [s["replica"]["refreshes_mirrored"] for s in sent]
    resets = [s["totals"]["events_by_type"].get("history_reset", 0) for s in sent]
    assert all(n > 0 for n in mirrored) and all(n > 0 for n in resets), (mirrored, resets)
    counts, integrity = rep["counts"], rep["integrity"]
    assert counts["events"] == sum(s["totals"]["events"] for s in sent)
    assert counts["turns_failed"] == 0, [
        (r["stage"], r["message"], r["count"]) for r in rep["errors"]
    ]
    assert integrity["seq_gaps"] == integrity["seq_duplicates"] == 0
    assert integrity["seq_out_of_order"] == integrity["content_mismatches"] == 0
