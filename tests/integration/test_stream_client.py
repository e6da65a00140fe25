"""The stream client under gevent, as a Locust worker runs it: closing streams while the
server still pushes must not crash the process (websockets' sync client did, 17.3/17.4)."""

from __future__ import annotations

import secrets
import subprocess
import sys
import textwrap

from loadtest.runner.processes import SimProcess

SCRIPT = textwrap.dedent(
    """
    import locust  # gevent patching, as in a worker
    import sys, gevent
    from loadtest.client.ws import WebSocketStream
    url = sys.argv[1]
    streams = [WebSocketStream(url, {}) for _ in range(50)]
    frames = [0] * len(streams)
    def read(i, ws):
        for _ in ws.frames():
            frames[i] += 1
    # Every upgrade first: unread sockets fill and the server's writers wait on backpressure,
    # so no handshake queues behind 49 full-speed streams on a busy machine.
    for ws in streams:
        ws.connect()
    readers = [gevent.spawn(read, i, ws) for i, ws in enumerate(streams)]
    for _ in range(400):  # until every reader has frames (20 s at most), however busy
        gevent.sleep(0.05)
        if all(frames):
            break
    for ws in streams:  # close while the server pushes as fast as it can
        ws.close()
    gevent.joinall(readers, timeout=10)
    assert all(r.dead for r in readers), "a reader did not end"
    assert all(n > 0 for n in frames), frames
    print("closed", len(streams), "streams after", sum(frames), "frames")
    """
)


def test_closing_streams_under_load_in_a_gevent_process() -> None:
    sim = SimProcess.start("b", secrets.token_urlsafe(12), {}, quiet=True)
    try:
        url = sim.url.replace("http://", "ws://") + "/__sim/firehose?frames=100000000&batch=20"
        for _ in range(3):
            result = subprocess.run(
                [sys.executable, "-c", SCRIPT, url],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 0, result.stderr[-2000:]
            assert "closed 50 streams" in result.stdout
    finally:
        sim.stop()
