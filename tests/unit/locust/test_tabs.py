"""A user's watch sockets tell its ``Subagents`` of the children its chats spawn (protocol
§10.3): ``created`` with a ``parent_chat_id`` of the user's, then their status and admission."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson

from loadtest.core.recorder import Recorder
from loadtest.core.steps import Subagents
from loadtest.locust.tabs import Tabs

MS = 1_000_000


def frame(kind: str, **chat: Any) -> bytes:
    return orjson.dumps({"kind": kind, "chat": chat})


def test_children_of_the_users_chats_reach_its_subagents() -> None:
    recorder = Recorder()
    admitted: list[str] = []
    children = Subagents(recorder)
    children.watch("parent")
    children.spawn_call("parent", 100 * MS)
    rt: Any = SimpleNamespace(recorder=recorder)
    tabs = Tabs(rt, None, 0, on_admitted=lambda chat, t: admitted.append(chat), subagents=children)  # type: ignore[arg-type]
    tabs._frame(frame("created", id="kid", status="running", parent_chat_id="parent"), 150 * MS, 0)
    tabs._frame(frame("created", id="x", status="running", parent_chat_id="another"), 151 * MS, 0)
    tabs._frame(frame("created", id="root", status="running"), 152 * MS, 0)
    tabs._frame(frame("capacity_change", id="kid", queued_for_capacity=False), 400 * MS, 0)
    tabs._frame(frame("status_change", id="kid", status="error"), 900 * MS, 0)
    tabs._frame(frame("status_change", id="x", status="error"), 901 * MS, 0)
    assert recorder.counts["subagents_spawned"] == 1 and recorder.counts["subagents_failed"] == 1
    running = recorder.latency["subagent_time_to_running"]
    assert (running.count, running.max) == (1, 50_000)
    wait = recorder.latency["capacity_wait_subagent"]
    assert (wait.count, wait.max) == (1, 300_000)
    # The root chats' admission still goes where it went; the watch counts every event.
    assert admitted == ["kid"] and recorder.counts["watch_events"] == 6
