"""The driver: what it counts from the history of a chat whose stream dropped, and one
socket per stream however many greenlets open it."""

from __future__ import annotations

import threading

from websockets.sync.server import ServerConnection, serve

from loadtest.client.rest import ChatClient
from loadtest.locust import runtime
from loadtest.locust.driver import ReconnectingStream, failover_loss
from loadtest.locust.runtime import RunSettings
from loadtest.protocol.eras import Era
from loadtest.scenario import Scenario


def test_failover_loss_counts_committed_messages_no_socket_received() -> None:
    committed = [1, 2, 5, 6, 9]
    assert failover_loss(committed, {1, 2, 5, 6, 9}) == 0
    assert failover_loss(committed, {1, 2, 9}) == 2  # 5 and 6 committed while it was down
    assert failover_loss(committed, {1, 2, 5, 6, 9, 12}) == 0  # seen, then edited away
    assert failover_loss([], set()) == 0


def test_a_stream_already_open_is_not_dialled_again() -> None:
    """``post`` opens a chat's stream when it finds none, which it can while the reader sleeps
    in a reconnect's backoff; the reader's own reconnect must then take that socket, not dial
    a second one that nobody would read."""
    release = threading.Event()

    def handler(connection: ServerConnection) -> None:
        release.wait(10)

    with serve(handler, "127.0.0.1", 0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        host = f"http://127.0.0.1:{server.socket.getsockname()[1]}"
        rt = runtime.install(RunSettings(scenario=Scenario(), host=host, era=Era.D), ["t"])
        stream = ReconnectingStream(rt, ChatClient(host, "t", Era.D), "c1", None)
        try:
            assert stream.open() and stream.is_open
            assert stream.open(reconnect=True)
            assert rt.open_streams == 1
            measured = rt.recorder.measurement()
            assert measured.count("streams_opened") == 1
            assert measured.count("stream_reconnects") == 0
        finally:
            release.set()
            stream.close()
