"""The generator bench's readers: each reads a whole firehose and counts it exactly.

A bench whose readers miscount, or whose Locust-plugins reader skipped Locust's stats, would
print ratios of nothing; these run every reader as ``chatload bench`` does, as a process.
"""

from __future__ import annotations

import os

import pytest

from loadtest.bench.client import KINDS, _reader
from tests.integration.conftest import EraSim

FRAMES, BATCH = 300, 3
CPU = min(os.sched_getaffinity(0))


@pytest.mark.parametrize("kind", KINDS)
def test_reader_reads_every_frame_and_event(era_b: EraSim, kind: str) -> None:
    era_b.http.post("/__sim/reset")
    url = f"{era_b.ws_url}/__sim/firehose?frames={FRAMES}&batch={BATCH}"
    result = _reader(kind, url, CPU)
    assert (result["frames"], result["events"]) == (FRAMES, FRAMES * BATCH)
    assert result["cpu_s"] > 0 and result["wall_s"] >= result["cpu_s"] * 0.5
    assert era_b.counts()["totals"]["frames"] == FRAMES


def test_idle_reader_holds_streams_and_prices_them(era_b: EraSim) -> None:
    chat = era_b.create_chat()
    url = f"{era_b.ws_url}/api/experimental/chats/{chat['id']}/stream"
    url += f"?coder_session_token={era_b.token}"
    result = _reader("idle", url, CPU, "50")
    assert result["streams"] == 50
    assert result["kb_per_stream"] < 1_000
