"""``chatload mock-llm`` as a real process, proven with the providers' own SDKs: every chunk
arrives, usage adds up, agent turns (tool calls as Coder's llmmock makes them, sub-agents
spawned and waited for) parse in all three APIs and are counted, and each injected fault
surfaces as the SDK's own error."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

try:  # the transport the newest SDKs use; older ones use httpx
    import httpx2

    TRANSPORT_ERROR: tuple[type[Exception], ...] = (httpx.HTTPError, httpx2.HTTPError)
    TRANSPORT_TIMEOUT: tuple[type[Exception], ...] = (
        httpx.TimeoutException,
        httpx2.TimeoutException,
    )
except ImportError:
    TRANSPORT_ERROR, TRANSPORT_TIMEOUT = (httpx.HTTPError,), (httpx.TimeoutException,)

from loadtest.mockllm.config import MockConfig

REPO = Path(__file__).resolve().parents[2]
MODEL = "scaletest-model"
#: The module server's own baseline: fast, short, seeded.
BASELINE = {"ttft": "0", "tokens_per_s": 0, "output_tokens": 8, "seed": 7}
EXECUTE: Any = {
    "type": "function",
    "function": {
        "name": "execute",
        "description": "run a command",
        "parameters": {"type": "object", "properties": {"command": {"type": "string"}}},
    },
}
CONTROL = "<coder-scaletest-control>{}</coder-scaletest-control>\nRun it."


@dataclass
class Mock:
    proc: subprocess.Popen[bytes]
    url: str  # with /v1, as Coder's base URL would be
    stderr: Path

    @property
    def root(self) -> str:
        return self.url.removesuffix("/v1")

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.root, timeout=5)

    def counts(self) -> dict[str, Any]:
        with self.admin() as client:
            counts: dict[str, Any] = client.get("/__mock/counts").json()
        return counts

    def tune(self, **patch: Any) -> None:
        """Reset to the baseline, then apply ``patch``: each test starts from the same place."""
        config = MockConfig.model_validate(BASELINE).model_dump(mode="json")
        with self.admin() as client:
            response = client.patch("/__mock/config", json={**config, **patch})
            assert response.status_code == 200, response.text
            client.post("/__mock/reset").raise_for_status()

    def openai(self, **options: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url, api_key="sk-test", max_retries=0, **options)

    def anthropic(self, **options: Any) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            base_url=self.root, api_key="sk-ant-test", max_retries=0, **options
        )


def _read_line(proc: subprocess.Popen[bytes], timeout_s: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    buffer = b""
    while b"\n" not in buffer:
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            raise RuntimeError(f"mock-llm did not start: {buffer!r}")
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"mock-llm closed stdout: {buffer!r}")
            buffer += chunk
    return buffer.decode()


def _start(directory: Path, *flags: str) -> Mock:
    env = {k: v for k, v in os.environ.items() if k != "CHATLOAD_MOCK_LLM_API_KEY"}
    stderr = directory / "stderr.log"
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loadtest.cli", "mock-llm", "--port", "0", *flags],
            stdout=subprocess.PIPE,
            stderr=err,
            cwd=REPO,
            env=env,
        )
    try:
        line = _read_line(proc, timeout_s=20)
    except BaseException:
        proc.kill()
        proc.wait(timeout=10)
        raise
    prefix = "chatload mock-llm listening on "
    assert line.startswith(prefix) and line.endswith("/v1\n"), line
    return Mock(proc, line.removeprefix(prefix).strip(), stderr)


def _stop(mock: Mock, sig: signal.Signals = signal.SIGTERM) -> tuple[int, str]:
    """Stop the server; return its exit code and everything it wrote to stdout and stderr."""
    if mock.proc.poll() is None:
        mock.proc.send_signal(sig)
    try:
        out, _ = mock.proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        mock.proc.kill()
        out, _ = mock.proc.communicate(timeout=10)
    return mock.proc.returncode, out.decode() + mock.stderr.read_text()


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mock]:
    flags = ["--ttft", "0", "--tokens-per-s", "0", "--output-tokens", "8", "--seed", "7"]
    server = _start(tmp_path_factory.mktemp("mockllm"), *flags)
    yield server
    code, output = _stop(server)
    assert code == 0, output
    # Intended cuts and silences are not errors, and keys are never written anywhere.
    assert "Traceback" not in output and " ERROR " not in output, output
    assert "sk-test" not in output and "sk-ant-test" not in output


@pytest.fixture(autouse=True)
def baseline(mock: Mock) -> None:
    mock.tune()


def _words(text: str) -> int:
    return len(text.split())


# --- OpenAI Chat Completions -------------------------------------------------------------


def test_chat_stream_delivers_every_chunk_and_usage(mock: Mock) -> None:
    mock.tune(output_tokens=12)
    prompt = "count these five words"
    stream = mock.openai().chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) == 12
    assert _words("".join(pieces)) == 12
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (_words(prompt), 12)
    assert last.usage.total_tokens == _words(prompt) + 12
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1


def test_chat_stream_without_include_usage_has_no_usage_chunk(mock: Mock) -> None:
    chunks = list(
        mock.openai().chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)
    assert sum(bool(c.choices[0].delta.content) for c in chunks) == 8


def test_chat_stream_helper_accumulates(mock: Mock) -> None:
    with mock.openai().chat.completions.stream(
        model=MODEL,
        messages=[{"role": "user", "content": "one two three"}],
        stream_options={"include_usage": True},
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].finish_reason == "stop"
    assert _words(final.choices[0].message.content or "") == 8
    assert final.usage is not None and final.usage.completion_tokens == 8


def test_chat_non_streaming(mock: Mock) -> None:
    completion = mock.openai().chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello you"},
        ],
    )
    assert completion.object == "chat.completion"
    assert _words(completion.choices[0].message.content or "") == 8
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 8)


def test_paths_without_v1_prefix(mock: Mock) -> None:
    client = openai.OpenAI(base_url=mock.root, api_key="sk-test", max_retries=0)
    completion = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.usage is not None and completion.usage.completion_tokens == 8
    assert mock.counts()["requests_by_api"]["chat_completions"] == 1


# --- OpenAI Responses ---------------------------------------------------------------------


def test_responses_stream_events_and_usage(mock: Mock) -> None:
    events = list(
        mock.openai().responses.create(model=MODEL, input="say something nice", stream=True)
    )
    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) == 8
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.output_text == "".join(deltas)
    usage = completed.response.usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (3, 8, 11)


def test_responses_stream_helper_and_non_streaming(mock: Mock) -> None:
    client = mock.openai()
    with client.responses.stream(model=MODEL, input="hello", instructions="be nice") as stream:
        final = stream.get_final_response()
    assert _words(final.output_text) == 8
    assert final.usage is not None and final.usage.input_tokens == 3
    response = client.responses.create(model=MODEL, input="hello")
    assert response.status == "completed" and _words(response.output_text) == 8


# --- Anthropic Messages -------------------------------------------------------------------


def test_anthropic_stream_text_and_usage(mock: Mock) -> None:
    prompt = "tell me a story"
    with mock.anthropic().messages.stream(
        model=MODEL,
        max_tokens=256,
        system="be brief",
        messages=[{"role": "user", "content": prompt}],
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) == 8
    assert final.content[0].type == "text" and final.content[0].text == "".join(pieces)
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (_words(prompt) + 2, 8)


def test_anthropic_non_streaming(mock: Mock) -> None:
    message = mock.anthropic().messages.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content[0].type == "text" and _words(message.content[0].text) == 8
    assert (message.usage.input_tokens, message.usage.output_tokens) == (1, 8)


def test_models_in_both_shapes(mock: Mock) -> None:
    mock.tune(models=["a-model", "b-model"])
    assert [m.id for m in mock.openai().models.list()] == ["a-model", "b-model"]
    assert [m.id for m in mock.anthropic().models.list()] == ["a-model", "b-model"]
    assert mock.counts()["requests_by_api"]["models"] == 2


# --- tool calls ---------------------------------------------------------------------------


def test_chat_tool_calls_per_turn(mock: Mock) -> None:
    mock.tune(tool_calls_per_turn=1)
    client = mock.openai()
    messages: list[Any] = [{"role": "user", "content": "list files"}]
    chunks = list(
        client.chat.completions.create(model=MODEL, messages=messages, tools=[EXECUTE], stream=True)
    )
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].id and calls[0].function and calls[0].function.name == "execute"
    arguments = "".join(tc.function.arguments or "" for tc in calls if tc.function)
    assert json.loads(arguments) == {"command": "echo scaletest"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    # With the tool's result in, the turn's one call is made: the reply is text.
    messages += [
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": calls[0].id,
                    "type": "function",
                    "function": {"name": "execute", "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": calls[0].id, "content": "a.txt"},
    ]
    reply = client.chat.completions.create(model=MODEL, messages=messages, tools=[EXECUTE])
    assert reply.choices[0].finish_reason == "stop" and reply.choices[0].message.content
    # Without the tool declared, no call is made.
    plain = client.chat.completions.create(model=MODEL, messages=messages[:1])
    assert plain.choices[0].finish_reason == "stop"


def test_responses_control_block_forces_tool_calls(mock: Mock) -> None:
    client = mock.openai()
    control = CONTROL.format('{"v":1,"tool_calls_this_turn":2,"tool":"execute","command":"ls"}')
    tool: Any = {
        "type": "function",
        "name": "execute",
        "parameters": EXECUTE["function"]["parameters"],
    }
    inputs: list[Any] = [{"role": "user", "content": [{"type": "input_text", "text": control}]}]
    for call_number in range(2):
        with client.responses.stream(model=MODEL, input=inputs, tools=[tool]) as stream:
            final = stream.get_final_response()
        call = final.output[0]
        assert call.type == "function_call", call_number
        assert call.name == "execute" and json.loads(call.arguments) == {"command": "ls"}
        inputs += [
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": "execute",
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "ok"},
        ]
    with client.responses.stream(model=MODEL, input=inputs, tools=[tool]) as stream:
        final = stream.get_final_response()
    assert final.output[0].type == "message" and _words(final.output_text) == 8


def test_anthropic_control_block_forces_tool_call(mock: Mock) -> None:
    client = mock.anthropic()
    control = CONTROL.format('{"v":1,"tool_calls_this_turn":1,"command":"echo hi"}')
    tool: Any = {"name": "execute", "input_schema": EXECUTE["function"]["parameters"]}
    messages: list[Any] = [{"role": "user", "content": control}]
    with client.messages.stream(
        model=MODEL, max_tokens=64, messages=messages, tools=[tool]
    ) as stream:
        final = stream.get_final_message()
    block = final.content[0]
    assert block.type == "tool_use" and block.name == "execute"
    assert block.input == {"command": "echo hi"}
    assert final.stop_reason == "tool_use"
    messages += [
        {"role": "assistant", "content": [block.model_dump()]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "hi"}],
        },
    ]
    reply = client.messages.create(model=MODEL, max_tokens=64, messages=messages, tools=[tool])
    assert reply.stop_reason == "end_turn" and reply.content[0].type == "text"


def test_malformed_control_block_is_a_bad_request(mock: Mock) -> None:
    with pytest.raises(openai.BadRequestError):
        mock.openai().chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": CONTROL.format("{not json")}]
        )


# --- agent turns: tool calls and sub-agents, in each API ------------------------------------

AGENT_TOOLS = ("execute", "spawn_agent", "wait_agent")
#: A step: (tool, arguments), or None for the text reply that ends the turn.
Step = tuple[str, dict[str, Any]] | None


def _result(tool: str, number: int) -> str:
    """What Coder would answer: spawn_agent's JSON names the new child chat."""
    if tool == "spawn_agent":
        child = {"chat_id": f"chat-{number}", "title": "t", "status": "running", "type": "general"}
        return json.dumps(child)
    return "done"


def _chat_step(mock: Mock, messages: list[Any], number: int) -> Step:
    """One streamed Chat Completions request, read as a client accumulates the deltas."""
    tools = [
        {"type": "function", "function": {**EXECUTE["function"], "name": n}} for n in AGENT_TOOLS
    ]
    chunks = list(
        mock.openai().chat.completions.create(
            model=MODEL, messages=messages, tools=tools, stream=True
        )
    )
    finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    if finish == "stop":
        assert not calls
        return None
    assert finish == "tool_calls" and calls[0].id and calls[0].function
    name = calls[0].function.name or ""
    arguments = "".join(tc.function.arguments or "" for tc in calls if tc.function)
    call = {"id": calls[0].id, "type": "function"}
    messages += [
        {
            "role": "assistant",
            "tool_calls": [{**call, "function": {"name": name, "arguments": arguments}}],
        },
        {"role": "tool", "tool_call_id": calls[0].id, "content": _result(name, number)},
    ]
    return name, json.loads(arguments)


def _responses_step(mock: Mock, inputs: list[Any], number: int) -> Step:
    tools: Any = [
        {"type": "function", "name": n, "parameters": EXECUTE["function"]["parameters"]}
        for n in AGENT_TOOLS
    ]
    with mock.openai().responses.stream(model=MODEL, input=inputs, tools=tools) as stream:
        final = stream.get_final_response()
    item = final.output[0]
    if item.type == "message":
        return None
    assert item.type == "function_call"
    inputs += [
        {
            "type": "function_call",
            "call_id": item.call_id,
            "name": item.name,
            "arguments": item.arguments,
        },
        {
            "type": "function_call_output",
            "call_id": item.call_id,
            "output": _result(item.name, number),
        },
    ]
    return item.name, json.loads(item.arguments)


def _messages_step(mock: Mock, messages: list[Any], number: int) -> Step:
    schema = EXECUTE["function"]["parameters"]
    tools: Any = [{"name": n, "input_schema": schema} for n in AGENT_TOOLS]
    with mock.anthropic().messages.stream(
        model=MODEL, max_tokens=64, messages=messages, tools=tools
    ) as stream:
        final = stream.get_final_message()
    block = final.content[0]
    if block.type == "text":
        assert final.stop_reason == "end_turn"
        return None
    assert block.type == "tool_use" and final.stop_reason == "tool_use"
    content = [
        {"type": "tool_result", "tool_use_id": block.id, "content": _result(block.name, number)}
    ]
    messages += [
        {"role": "assistant", "content": [block.model_dump()]},
        {"role": "user", "content": content},
    ]
    assert isinstance(block.input, dict)
    return block.name, block.input


STEPS = {"chat_completions": _chat_step, "responses": _responses_step, "messages": _messages_step}


def _first(api: str, prompt: str) -> list[Any]:
    if api == "responses":
        return [{"role": "user", "content": [{"type": "input_text", "text": prompt}]}]
    return [{"role": "user", "content": prompt}]


def _play_turn(mock: Mock, api: str, prompt: str = "do the work") -> list[tuple[str, Any]]:
    """A whole turn through the API's own SDK: each call answered, until a text reply."""
    history = _first(api, prompt)
    calls: list[tuple[str, Any]] = []
    for number in range(1, 20):
        step = STEPS[api](mock, history, number)
        if step is None:
            return calls
        calls.append(step)
    raise AssertionError(f"the turn never ended: {calls}")


def test_chat_tool_call_stream_is_coders_wire(mock: Mock) -> None:
    """Byte for byte the shape of Coder's llmmock (TestSendOpenAIStreamIncludesToolCalls)."""
    mock.tune(tool_calls_per_turn=1, tool_call_command="ls -la")
    body = {
        "model": MODEL,
        "stream": True,
        "messages": [{"role": "user", "content": "go"}],
        "tools": [EXECUTE],
    }
    with mock.admin() as client:
        reply = client.post("/v1/chat/completions", json=body)
    events = [e.removeprefix("data: ") for e in reply.text.split("\n\n") if e]
    assert len(events) == 3 and events[2] == "[DONE]"
    first, second = json.loads(events[0])["choices"], json.loads(events[1])["choices"]
    assert first[0]["finish_reason"] is None
    delta = first[0]["delta"]
    assert set(delta) == {"role", "tool_calls"} and delta["role"] == "assistant"
    (call,) = delta["tool_calls"]
    assert (call["index"], call["type"], call["function"]["name"]) == (0, "function", "execute")
    assert call["id"].startswith("call_")
    assert json.loads(call["function"]["arguments"]) == {"command": "ls -la"}
    assert second[0]["finish_reason"] == "tool_calls" and second[0]["delta"] == {}


@pytest.mark.parametrize("api", STEPS)
def test_sdk_plays_a_turn_of_tool_calls_and_a_sub_agent(mock: Mock, api: str) -> None:
    mock.tune(tool_calls_per_turn=2, tool_call_command="make test", subagents_per_turn=1)
    calls = _play_turn(mock, api)
    assert calls[:2] == [("execute", {"command": "make test"})] * 2
    (spawn, spawn_args), (wait, wait_args) = calls[2:]
    assert (spawn, spawn_args["type"], spawn_args["title"]) == (
        "spawn_agent",
        "general",
        "mock sub-agent 1",
    )
    # wait_agent names the chat that spawn_agent's result (the third tool result) gave.
    assert (wait, wait_args) == ("wait_agent", {"chat_id": "chat-3"})
    counts = mock.counts()
    assert counts["requests_by_api"][api] == 5 and counts["text_replies"] == 1
    assert counts["tool_calls"] == {"execute": 2, "spawn_agent": 1, "wait_agent": 1}
    # The sub-agent's own turn, from the prompt it was spawned with: depth 1, so no spawns.
    child = _play_turn(mock, api, spawn_args["prompt"])
    assert [name for name, _ in child] == ["execute", "execute"]


@pytest.mark.parametrize("api", STEPS)
def test_control_block_shapes_one_turn(mock: Mock, api: str) -> None:
    mock.tune(tool_calls_per_turn=3)
    block = '{"v":1,"tool_calls_this_turn":1,"subagents_this_turn":1,"subagent_tool_calls":0}'
    calls = _play_turn(mock, api, CONTROL.format(block))
    assert [name for name, _ in calls] == ["execute", "spawn_agent", "wait_agent"]
    assert [name for name, _ in _play_turn(mock, api, calls[1][1]["prompt"])] == []
    # The next turn, without a block, is the server's again.
    assert len(_play_turn(mock, api, "again")) == 3


def test_spawn_result_without_chat_id_ends_the_turn(mock: Mock) -> None:
    mock.tune(subagents_per_turn=1)
    tools = [{"type": "function", "function": {"name": n}} for n in AGENT_TOOLS]
    spawn = {"id": "c1", "type": "function", "function": {"name": "spawn_agent", "arguments": "{}"}}
    messages: Any = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "tool_calls": [spawn]},
        {"role": "tool", "tool_call_id": "c1", "content": "error: subagent limit reached"},
    ]
    reply = mock.openai().chat.completions.create(model=MODEL, messages=messages, tools=tools)
    assert reply.choices[0].finish_reason == "stop"
    assert "no chat_id" in (reply.choices[0].message.content or "")
    assert mock.counts()["wait_agent_without_chat_id"] == 1


def test_unknown_control_key_is_a_bad_request_naming_it(mock: Mock) -> None:
    with pytest.raises(anthropic.BadRequestError, match="subagent_this_turn"):
        mock.anthropic().messages.create(
            model=MODEL,
            max_tokens=64,
            messages=[{"role": "user", "content": CONTROL.format('{"subagent_this_turn":1}')}],
        )


def test_flags_shape_every_turn(tmp_path: Path) -> None:
    flags = ["--ttft", "0", "--tokens-per-s", "0", "--tool-calls-per-turn", "2"]
    flags += ["--tool-call-command", "echo hi there", "--subagents-per-turn", "1"]
    server = _start(tmp_path, *flags)
    try:
        calls = _play_turn(server, "chat_completions")
        assert [name for name, _ in calls] == ["execute", "execute", "spawn_agent", "wait_agent"]
        assert calls[0][1] == {"command": "echo hi there"}
        counts = server.counts()
        assert counts["tool_calls"] == {"execute": 2, "spawn_agent": 1, "wait_agent": 1}
        assert counts["text_replies"] == 1 and counts["streams_completed"] == 5
    finally:
        code, output = _stop(server)
    assert code == 0, output


# --- faults -------------------------------------------------------------------------------

STATUS_FAULTS = [
    ("fault_500", "http_500", 500),
    ("fault_502", "http_502", 502),
    ("fault_503", "http_503", 503),
    ("fault_overloaded", "overloaded", 529),
]


def test_openai_rate_limit_with_retry_after(mock: Mock) -> None:
    mock.tune(fault_rate_limit=1.0, retry_after_s=1.5)
    with pytest.raises(openai.RateLimitError) as caught:
        mock.openai().chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
        )
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.response.headers["retry-after-ms"] == "1500"
    with pytest.raises(openai.RateLimitError):
        mock.openai().responses.create(model=MODEL, input="hi", stream=True)
    assert mock.counts()["faults"]["rate_limit"] == 2


@pytest.mark.parametrize(("knob", "kind", "status"), STATUS_FAULTS)
def test_openai_server_errors(mock: Mock, knob: str, kind: str, status: int) -> None:
    mock.tune(**{knob: 1.0})
    with pytest.raises(openai.InternalServerError) as caught:
        mock.openai().chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
        )
    assert caught.value.status_code == status
    assert mock.counts()["faults"][kind] == 1


def test_anthropic_rate_limit(mock: Mock) -> None:
    mock.tune(fault_rate_limit=1.0)
    with pytest.raises(anthropic.RateLimitError) as caught:
        mock.anthropic().messages.create(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.response.headers["retry-after"] == "1"


@pytest.mark.parametrize(("knob", "kind", "status"), STATUS_FAULTS)
def test_anthropic_server_errors(mock: Mock, knob: str, kind: str, status: int) -> None:
    mock.tune(**{knob: 1.0})
    with (
        pytest.raises(anthropic.InternalServerError) as caught,
        mock.anthropic().messages.stream(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        list(stream.text_stream)
    assert caught.value.status_code == status
    if kind == "overloaded":
        assert isinstance(caught.value, anthropic.OverloadedError)
        assert "overloaded_error" in str(caught.value)
    assert mock.counts()["faults"][kind] == 1


def test_cut_stream_is_a_connection_error(mock: Mock) -> None:
    mock.tune(fault_cut=1.0)
    chunks = mock.openai().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIConnectionError):
        list(chunks)
    with pytest.raises(openai.APIConnectionError):
        mock.openai().chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
    with (
        pytest.raises((anthropic.APIConnectionError, *TRANSPORT_ERROR)),
        mock.anthropic().messages.stream(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        list(stream.text_stream)
    counts = mock.counts()
    assert counts["faults"]["cut"] == 3
    assert counts["streams_completed"] == 0


def test_silent_stream_times_out(mock: Mock) -> None:
    # The silence outlasts every client attempt many times over: finishing well before it
    # proves the clients timed out, however busy the machine.
    silence_s = 20
    mock.tune(fault_silence=1.0, silence_s=silence_s)
    client = mock.openai(timeout=0.5)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        list(
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
    with (
        pytest.raises((anthropic.APITimeoutError, *TRANSPORT_TIMEOUT)),
        mock.anthropic(timeout=0.5).messages.stream(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        list(stream.text_stream)
    assert time.monotonic() - started < silence_s / 2
    assert mock.counts()["faults"]["silence"] == 2


def test_per_request_config_header(mock: Mock) -> None:
    client = mock.openai()
    override = {"X-Mock-LLM-Config": json.dumps({"output_tokens": 3, "fault_503": 0})}
    completion = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], extra_headers=override
    )
    assert completion.usage is not None and completion.usage.completion_tokens == 3
    bad = {"X-Mock-LLM-Config": json.dumps({"fault_cut": 2})}
    with pytest.raises(openai.BadRequestError, match="fault_cut"):
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], extra_headers=bad
        )
    # The override was for that request only.
    with mock.admin() as admin:
        assert admin.get("/__mock/config").json()["output_tokens"] == 8


# --- timing, counts, admin, determinism ---------------------------------------------------


def test_ttft_and_pace(mock: Mock) -> None:
    mock.tune(ttft="constant:0.4", tokens_per_s=20, output_tokens=5)
    started = time.monotonic()
    stream = mock.openai().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    arrivals = [
        time.monotonic() - started for c in stream if c.choices and c.choices[0].delta.content
    ]
    assert len(arrivals) == 5
    # The injected 0.4 s is a floor; above, only a mock waiting many times over what it was
    # told fails (a busy machine adds seconds, not tenfold).
    assert 0.38 <= arrivals[0] < 0.4 * 10
    # Four gaps of 1/20 s after the first token.
    assert 0.19 <= arrivals[-1] - arrivals[0] < 0.2 * 10


def test_counts_match_what_was_served(mock: Mock) -> None:
    openai_client, anthropic_client = mock.openai(), mock.anthropic()
    for _ in range(2):
        list(
            openai_client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "a b c"}], stream=True
            )
        )
    anthropic_client.messages.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "d e"}]
    )
    openai_client.responses.create(model=MODEL, input="f", stream=True).close()
    list(openai_client.models.list())
    limited = {"X-Mock-LLM-Config": json.dumps({"fault_rate_limit": 1})}
    with pytest.raises(openai.RateLimitError):
        openai_client.responses.create(model=MODEL, input="g", extra_headers=limited)
    counts = mock.counts()
    assert counts["requests"] == 6
    assert counts["requests_by_api"] == {
        "chat_completions": 2,
        "responses": 2,
        "messages": 1,
        "models": 1,
    }
    assert counts["faults"] == {
        "rate_limit": 1,
        "http_500": 0,
        "http_502": 0,
        "http_503": 0,
        "overloaded": 0,
        "silence": 0,
        "cut": 0,
    }
    # The responses stream was closed unread: the client left, so it may not have completed.
    assert counts["streams_completed"] in (3, 4)
    assert counts["input_tokens"] == 3 + 3 + 2 + 1
    assert counts["output_tokens"] >= 3 * 8
    with mock.admin() as admin:
        zero = admin.post("/__mock/reset").json()
    assert zero["requests"] == 0 and zero["output_tokens"] == 0


def test_seed_replays_a_run(mock: Mock) -> None:
    def first_reply() -> str:
        with mock.admin() as admin:
            admin.post("/__mock/reset").raise_for_status()
        completion = mock.openai().chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
        return completion.choices[0].message.content or ""

    assert first_reply() == first_reply()


def test_admin_config_patch(mock: Mock) -> None:
    with mock.admin() as admin:
        changed = admin.patch("/__mock/config", json={"ttft": "uniform:0.1,0.2", "fault_cut": 0.25})
        assert changed.status_code == 200
        assert changed.json()["ttft"]["dist"] == "uniform"
        assert admin.get("/__mock/config").json()["fault_cut"] == 0.25
        restored = admin.patch("/__mock/config", json={"fault_cut": None}).json()
        assert restored["fault_cut"] == 0.0
        bad = admin.patch("/__mock/config", json={"fault_cut": 0.5, "fault_500": 0.6})
        assert bad.status_code == 422
        unknown = admin.patch("/__mock/config", json={"tokens_per_minute": 3})
        assert unknown.status_code == 422
        assert unknown.json()["detail"][0]["field"] == "tokens_per_minute"
        assert admin.get("/__mock/config").json()["fault_500"] == 0.0


def test_help_documents_every_knob() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "loadtest.cli", "mock-llm", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
        check=True,
    )
    for name in MockConfig.model_fields:
        assert "--" + name.replace("_", "-") in result.stdout
    for flag in ("--host", "--port", "--config", "--api-key", "/__mock/counts"):
        assert flag in result.stdout


def test_api_key_required_and_never_written(tmp_path: Path) -> None:
    secret = "sk-mock-secret-5bd1c0e7"
    toml = tmp_path / "mock.toml"
    toml.write_text('output_tokens = 4\nttft = "0"\ntokens_per_s = 0\nmodels = ["from-toml"]\n')
    flags = ["--config", str(toml), "--output-tokens", "5", "--api-key", secret]
    server = _start(tmp_path, *flags, "--log-level", "debug", "--access-log")
    try:
        with server.admin() as admin:
            config = admin.get("/__mock/config").json()
        assert (config["output_tokens"], config["models"]) == (5, ["from-toml"])
        assert secret not in json.dumps(config)
        wrong = openai.OpenAI(base_url=server.url, api_key="sk-wrong-key", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            wrong.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
        with pytest.raises(anthropic.AuthenticationError):
            anthropic.Anthropic(
                base_url=server.root, api_key="sk-wrong-key", max_retries=0
            ).messages.create(
                model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}]
            )
        right = openai.OpenAI(base_url=server.url, api_key=secret, max_retries=0)
        reply = right.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}]
        )
        assert reply.usage is not None and reply.usage.completion_tokens == 5
        message = anthropic.Anthropic(
            base_url=server.root, api_key=secret, max_retries=0
        ).messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}])
        assert message.usage.output_tokens == 5
    finally:
        code, output = _stop(server, signal.SIGINT)
    assert code == 0, output
    assert "/v1/chat/completions" in output  # the access log was on
    assert secret not in output and "sk-wrong-key" not in output
