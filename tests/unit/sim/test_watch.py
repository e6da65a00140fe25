"""The watch socket in-process: a chat's changes reach its owner's tab in the era's shape
(era A pings first), a refused user is an HTTP error, a data frame closes the socket."""

from __future__ import annotations

import pytest
from starlette.testclient import WebSocketDenialResponse

from loadtest.protocol.eras import Era
from tests.unit.sim.apps import client, create_body, sim_of


@pytest.mark.parametrize("era", [Era.A, Era.D])
def test_the_owners_tab_sees_its_new_chat_change_status(era: Era) -> None:
    sim = sim_of(era, requires_action_ratio=1.0)
    with client(sim) as http:
        base = sim.paths.base
        with http.websocket_connect(f"{base}/watch") as ws:
            if era is Era.A:
                assert ws.receive_json() == {"type": "ping"}
            chat_id = http.post(base, json=create_body()).json()["id"]
            for _ in range(100):
                body = ws.receive_json()
                event = body["data"] if era is Era.A else body
                if event["chat"]["id"] == chat_id and event["kind"] == "status_change":
                    break
            else:
                raise AssertionError("no status_change for the new chat")
            if era is Era.A:
                assert body["type"] == "data"
        assert sim.watch.sent.get("status_change", 0) >= 1


def test_a_watch_without_a_session_is_refused_before_the_upgrade() -> None:
    sim = sim_of(Era.D)
    with client(sim) as http:
        http.headers.clear()
        with (
            pytest.raises(WebSocketDenialResponse) as refused,
            http.websocket_connect(f"{sim.paths.base}/watch"),
        ):
            pass
    assert refused.value.status_code == 401


@pytest.mark.parametrize(("era", "code"), [(Era.A, 1002), (Era.D, 1008)])
def test_a_data_frame_from_the_client_closes_the_watch(era: Era, code: int) -> None:
    sim = sim_of(era)
    with client(sim) as http:
        with http.websocket_connect(f"{sim.paths.base}/watch") as ws:
            if era is Era.A:
                ws.receive_json()  # the ping
            ws.send_text("hello?")
            closed = ws.receive()
        assert closed["type"] == "websocket.close" and closed["code"] == code
    assert sim.watch.sockets == {}  # the closed tab is forgotten
