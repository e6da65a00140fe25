"""The event-kind registry: each kind once, with a payload key the protocol model has."""

from __future__ import annotations

import pytest

from loadtest.protocol import events
from loadtest.protocol.eras import Era
from loadtest.protocol.events import EVENT_KINDS, MESSAGE_PART, PREVIEW_RESET, RETRY
from loadtest.protocol.models import ChatStreamEvent
from loadtest.sim.events import Events


def test_each_kind_is_declared_once_and_its_constant_is_its_wire_name() -> None:
    assert list(EVENT_KINDS) == [
        "message_part",
        "message",
        "status",
        "error",
        "queue_update",
        "retry",
        "action_required",
        "preview_reset",
        "history_reset",
    ]
    for name, kind in EVENT_KINDS.items():
        assert kind.name == name
        assert getattr(events, name.upper()) == name


def test_declaring_a_kind_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="'retry' declared twice"):
        events._declare("retry", payload="retry", in_snapshot=False, since=Era.A, doc="again")
    assert EVENT_KINDS[RETRY].doc != "again"


def test_each_payload_is_a_field_of_the_stream_event_model() -> None:
    fields = set(ChatStreamEvent.model_fields)
    for kind in EVENT_KINDS.values():
        assert kind.payload is None or kind.payload in fields, kind.name


def test_the_simulator_sends_only_declared_kinds_with_their_payload() -> None:
    sim = Events(Era.D)
    sent = [
        sim.text_part("c", "text", "hi", None),
        sim.status("c", "running"),
        sim.preview_reset("c"),
        sim.history_reset("c"),
    ]
    for event in sent:
        kind = EVENT_KINDS[event["type"]]
        assert kind.payload is None or kind.payload in event, kind.name
    assert sent[0]["type"] == MESSAGE_PART and sent[2]["type"] == PREVIEW_RESET
    assert EVENT_KINDS[PREVIEW_RESET].since is Era.D and not EVENT_KINDS[RETRY].in_snapshot
