"""The three tiers on 127.0.0.1: test client -> ``chatload sim --llm-url`` -> a mock LLM
(OpenAI Chat Completions streaming, served from this test process)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.integration.conftest import EraSim


class MockLLM:
    """Answers each POST with the next scripted behaviour (default: a short reply)."""

    def __init__(self) -> None:
        self.script: list[tuple[Any, ...]] = []
        self.requests: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        mock = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                mock.requests.append((self.path, body, dict(self.headers)))
                mock.answer(self, mock.script.pop(0) if mock.script else ("ok",))

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, handler: BaseHTTPRequestHandler, behaviour: tuple[Any, ...]) -> None:
        kind = behaviour[0]
        if kind == "status":
            handler.send_response(behaviour[1])
            handler.send_header("Content-Type", "application/json")
            handler.end_headers()
            handler.wfile.write(b'{"error":{"message":"scripted failure"}}')
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()

        def send(chunk: dict[str, Any]) -> None:
            handler.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")

        def delta(content: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": content, "finish_reason": finish}],
            }

        if kind == "tools":
            call = {
                "index": 0,
                "id": "call_1",
                "type": "function",
                "function": {"name": behaviour[1], "arguments": json.dumps(behaviour[2])},
            }
            send(delta({"role": "assistant", "tool_calls": [call]}, "tool_calls"))
        else:
            chunks = behaviour[1] if len(behaviour) > 1 else ["Hel", "lo ", "world"]
            for text in chunks:
                send(delta({"content": text}))
            if kind == "cut":
                return
            send(delta({}, "stop"))
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        send({"object": "chat.completion.chunk", "choices": [], "usage": usage})
        handler.wfile.write(b"data: [DONE]\n\n")


@pytest.fixture(scope="module")
def llm() -> Iterator[MockLLM]:
    mock = MockLLM()
    yield mock
    mock.server.shutdown()


@pytest.fixture(scope="module")
def tiers(llm: MockLLM) -> Iterator[EraSim]:
    sim = EraSim("b", ["--llm-url", f"{llm.url}/v1", "--time-scale", "0.001", "--rate-limit", "-1"])
    yield sim
    sim.stop()


@pytest.fixture
def three(tiers: EraSim, llm: MockLLM) -> Iterator[tuple[EraSim, MockLLM]]:
    tiers.restore()
    llm.script.clear()
    llm.requests.clear()
    yield tiers, llm


def _turn(
    sim: EraSim, llm: MockLLM, script: list[tuple[Any, ...]], text: str = "hello"
) -> tuple[str, list[dict[str, Any]]]:
    """A chat's second turn, watched live, with the LLM following ``script``."""
    chat = sim.create_chat("first")
    sim.wait_idle(chat["id"])
    llm.script[:] = script
    llm.requests.clear()
    sim.http.post("/__sim/reset")
    with sim.open(chat["id"]) as stream:
        stream.until_status("waiting")
        start = len(stream.events)
        assert sim.post(chat["id"], text).json()["queued"] is False
        stream.until_status("waiting", "error", count=2)
        return chat["id"], stream.events[start:]


def _of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


def test_llm_chunks_become_parts(three: tuple[EraSim, MockLLM]) -> None:
    sim, llm = three
    _, events = _turn(sim, llm, [])
    texts = [e["message_part"]["part"]["text"] for e in _of(events, "message_part")]
    assistant = [
        e["message"] for e in _of(events, "message") if e["message"]["role"] == "assistant"
    ]
    assert texts[-3:] == ["Hel", "lo ", "world"]
    assert assistant[-1]["content"] == [{"type": "text", "text": "Hello world"}]
    assert assistant[-1]["usage"]["output_tokens"] == 5
    path, body, headers = llm.requests[0]
    assert path == "/v1/chat/completions"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"][0] == {"role": "user", "content": "first"}
    assert body["messages"][-1] == {"role": "user", "content": "hello"}
    assert body["model"] == "gpt-sim"
    assert headers["Authorization"] == "Bearer sim-key"


def test_llm_errors_are_retried(three: tuple[EraSim, MockLLM]) -> None:
    sim, llm = three
    script = [("status", 503), ("status", 529), ("cut", ["partial"]), ("ok", ["fine"])]
    chat_id, events = _turn(sim, llm, script)
    retries = [e["retry"] for e in _of(events, "retry")]
    assert [r["attempt"] for r in retries] == [1, 2, 3]
    assert [r["status_code"] for r in retries[:2]] == [503, 529]
    # Section 8.6: a 503 is a timeout, a 529 overloaded; the messages name the provider.
    assert [r["kind"] for r in retries[:2]] == ["timeout", "overloaded"]
    assert retries[1]["error"] == "OpenAI Compatible is temporarily overloaded."
    assert "status_code" not in retries[2]
    assert _of(events, "status")[-1]["status"]["status"] == "waiting"
    final = [e["message"] for e in _of(events, "message") if e["message"]["role"] == "assistant"]
    assert final[-1]["content"][0]["text"] == "fine"
    counts = sim.counts()["chats"][chat_id]
    assert counts["llm_retries"] == 3 and counts["retry_events"] == 3
    assert len(llm.requests) == 4


def test_llm_auth_error_is_not_retried(three: tuple[EraSim, MockLLM]) -> None:
    sim, llm = three
    chat_id, events = _turn(sim, llm, [("status", 401)])
    assert not _of(events, "retry")
    error = _of(events, "error")[0]["error"]
    assert (error["kind"], error["retryable"], error["status_code"]) == ("auth", False, 401)
    chat = sim.api.get(f"{sim.base}/{chat_id}").json()
    assert chat["status"] == "error" and chat["last_error"] == error["message"]


def test_llm_tool_calls(three: tuple[EraSim, MockLLM]) -> None:
    sim, llm = three
    _, events = _turn(sim, llm, [("tools", "execute", {"command": "ls"}), ("ok", ["done"])])
    parts = [e["message_part"] for e in _of(events, "message_part")]
    calls = [p for p in parts if p["part"]["type"] == "tool-call" and "args" in p["part"]]
    assert calls[0]["part"]["tool_name"] == "execute" and calls[0]["part"]["args"] == {
        "command": "ls"
    }
    assert any(p["part"]["type"] == "tool-result" and p["role"] == "tool" for p in parts)
    roles = [e["message"]["role"] for e in _of(events, "message")]
    assert roles[-3:] == ["assistant", "tool", "assistant"]
    second = llm.requests[1][1]["messages"]
    assert roles.count("tool") == 1
    assert second[-2]["tool_calls"][0]["function"]["name"] == "execute"
    assert second[-1]["role"] == "tool" and second[-1]["tool_call_id"] == "call_1"


def test_api_configured_provider_wins(three: tuple[EraSim, MockLLM]) -> None:
    sim, llm = three
    provider = sim.api.post(
        f"{sim.base}/providers",
        json={"provider": "openai-compat", "base_url": f"{llm.url}/alt", "api_key": "alt-key"},
    ).json()
    try:
        model = sim.api.post(
            f"{sim.base}/model-configs",
            json={"provider": "openai-compat", "model": "scaletest-model", "context_limit": 4096},
        ).json()
        chat = sim.api.post(
            sim.base,
            json={
                "content": [{"type": "text", "text": "hi"}],
                "organization_id": "0fa1c0de-c0de-4c0d-8c0d-000000000001",
                "model_config_id": model["id"],
            },
        ).json()
        sim.wait_idle(chat["id"])
        path, body, headers = llm.requests[-1]
        assert path == "/alt/chat/completions"
        assert body["model"] == "scaletest-model"
        assert headers["Authorization"] == "Bearer alt-key"
    finally:
        sim.api.delete(f"{sim.base}/providers/{provider['id']}")
