"""The client bench's readers: each kind, in its own process, reads every frame and event the
replay server sends and reports them with its CPU and wall time."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from loadtest.bench.core import array_frame
from loadtest.bench.readers import READERS
from loadtest.bench.replay import Replay

FRAMES = 40


@pytest.fixture(scope="module")
def replay() -> Iterator[Replay]:
    server = Replay({20: array_frame(20)})
    yield server
    server.stop()


@pytest.mark.parametrize("kind", sorted(READERS))
def test_each_reader_reads_the_whole_stream(replay: Replay, kind: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.bench.readers", kind, replay.url(20, FRAMES)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["frames"], result["events"]) == (FRAMES, 20 * FRAMES)
    assert result["cpu_s"] > 0 and result["wall_s"] > 0
