"""The replay server: a real websocket handshake, exactly the frames asked for (the payload
given for that batch), then a clean close 1000."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import connect

from loadtest.bench.replay import CHUNK_BYTES, Replay

PAYLOADS = {1: b'[{"type":"ping"}]', 20: b"[" + b",".join([b'{"type":"x"}'] * 20) + b"]"}


@pytest.fixture
def replay() -> Iterator[Replay]:
    server = Replay(PAYLOADS)
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("batch", "frames"),
    [(1, 0), (1, 5), (20, 3), (1, CHUNK_BYTES // len(PAYLOADS[1]) + 7)],  # past one chunk
)
def test_a_reader_gets_exactly_the_frames_asked_for_then_a_clean_close(
    replay: Replay, batch: int, frames: int
) -> None:
    got = 0
    with connect(replay.url(batch, frames), open_timeout=10, close_timeout=10) as ws:
        with pytest.raises(ConnectionClosedOK):
            while True:
                message = ws.recv(timeout=10)
                assert message == PAYLOADS[batch].decode()
                got += 1
        assert ws.close_code == 1000
    assert got == frames
