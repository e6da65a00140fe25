"""Setup's admin calls: where each era configures its provider and model (section 8.2), and
the probe chat, which waits for ``waiting`` every 0.5 s for at most 15 s, names what went
wrong otherwise, and is archived either way."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest

from loadtest.client.rest import ChatClient, RestError
from loadtest.deploy.admin import (
    ProbeError,
    ProviderResult,
    delete_model,
    delete_provider,
    ensure_model,
    ensure_provider,
    probe_chat,
    restore_provider,
)
from loadtest.protocol.ai_providers import LEGACY_GONE
from loadtest.protocol.eras import AI_PROVIDERS, PATHS, Era

CHAT = {
    "id": "c0ffee00-0000-4000-8000-000000000001",
    "owner_id": "u",
    "status": "pending",
    "created_at": "2026-12-01T00:00:00Z",
    "updated_at": "2026-12-01T00:00:00Z",
}


def deployment(statuses: Iterator[Mapping[str, object]], seen: list[str]) -> ChatClient:
    one = PATHS[Era.D].chat(str(CHAT["id"]))

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.method == "POST":
            return httpx.Response(201, json=CHAT)
        if request.method == "GET" and request.url.path == one:
            return httpx.Response(200, json={**CHAT, **next(statuses)})
        return httpx.Response(204)

    return ChatClient("http://coder.test", "t", Era.D, transport=httpx.MockTransport(answer))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_probe_polls_until_waiting_then_archives() -> None:
    seen: list[str] = []
    clock = Clock()
    statuses = iter([{"status": "pending"}, {"status": "running"}, {"status": "waiting"}])
    waited = probe_chat(deployment(statuses, seen), "o", clock=clock, sleep=clock.sleep)
    assert waited == 1.0 and clock.sleeps == [0.5, 0.5]
    assert seen[-1].startswith("PATCH")  # archived


def test_the_probe_gives_up_after_15_s_and_names_an_error() -> None:
    seen: list[str] = []
    clock = Clock()
    forever = iter(lambda: {"status": "running"}, None)
    with pytest.raises(ProbeError, match="still 'running' after 15 s"):
        probe_chat(deployment(forever, seen), "o", clock=clock, sleep=clock.sleep)
    assert len(clock.sleeps) == 30 and seen[-1].startswith("PATCH")
    failed = iter(
        [{"status": "error", "last_error": {"message": "OpenAI is rate limiting requests."}}]
    )
    with pytest.raises(ProbeError, match="OpenAI is rate limiting requests"):
        probe_chat(deployment(failed, []), "o", clock=Clock(), sleep=Clock().sleep)


def recording(
    era: Era, answers: Mapping[tuple[str, str], httpx.Response], seen: list[tuple[str, str, Any]]
) -> ChatClient:
    """A client whose deployment answers ``answers`` by (method, path), else 204."""

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        seen.append((request.method, request.url.path, body))
        return answers.get((request.method, request.url.path), httpx.Response(204))

    return ChatClient("http://coder.test", "t", era, transport=httpx.MockTransport(answer))


EXPERIMENTAL_PROVIDERS = "/api/experimental/chats/providers"
ORG_MODELS = "/api/v2/organizations/o/chats/models"


GONE = httpx.Response(410, json={"message": LEGACY_GONE})


def test_era_c_setup_meets_410_and_uses_ai_providers_and_organization_models() -> None:
    """§9.8: C's legacy provider route answers 410; setup takes the AI providers instead, and
    the organization model names it by ``ai_provider_id``; teardown finds it there."""
    seen: list[tuple[str, str, Any]] = []
    client = recording(
        Era.C,
        {
            ("POST", EXPERIMENTAL_PROVIDERS): GONE,
            ("POST", AI_PROVIDERS): httpx.Response(201, json={"id": "p1"}),
            ("POST", ORG_MODELS): httpx.Response(201, json={"id": "m1"}),
            ("PATCH", f"{AI_PROVIDERS}/p1"): httpx.Response(200, json={"id": "p1"}),
        },
        seen,
    )
    provider = ensure_provider(client, "http://llm.test/v1", "k")
    assert provider == ProviderResult("p1", True, ai=True)
    assert ensure_model(client, "p1", "scaletest-model", "o", ai_provider=True) == ("m1", True)
    (_, _, legacy), (_, _, made), (_, _, model) = seen
    assert legacy["provider"] == "openai-compat"
    assert made["type"] == "openai-compat" and made["base_url"] == "http://llm.test/v1"
    assert made["name"] == "chatload-mock-llm" and made["api_keys"] == ["k"]
    assert model["ai_provider_id"] == "p1" and "provider" not in model
    assert model["context_limit"] > 0 and model["model"] == "scaletest-model"
    assert delete_model(client, "m1", "o") and delete_provider(client, "p1", ai=True)
    restore_provider(client, "p1", "http://old.test/v1", ai=True)
    assert [(method, path) for method, path, _ in seen] == [
        ("POST", EXPERIMENTAL_PROVIDERS),
        ("POST", AI_PROVIDERS),
        ("POST", ORG_MODELS),
        ("DELETE", f"{ORG_MODELS}/m1"),
        ("DELETE", f"{AI_PROVIDERS}/p1"),
        ("PATCH", f"{AI_PROVIDERS}/p1"),
    ]
    assert not any(path.startswith("/api/v2/chats/") for _, path, _ in seen)


def test_a_late_era_b_build_that_answers_410_gets_an_ai_provider_too() -> None:
    seen: list[tuple[str, str, Any]] = []
    models = "/api/experimental/chats/model-configs"
    client = recording(
        Era.B,
        {
            ("POST", EXPERIMENTAL_PROVIDERS): GONE,
            ("POST", AI_PROVIDERS): httpx.Response(409, json={"message": "exists"}),
            ("GET", f"{AI_PROVIDERS}/chatload-mock-llm"): httpx.Response(
                200, json={"id": "p9", "base_url": "http://old/v1"}
            ),
            ("PATCH", f"{AI_PROVIDERS}/p9"): httpx.Response(200, json={"id": "p9"}),
            ("POST", models): httpx.Response(201, json={"id": "m1"}),
        },
        seen,
    )
    found = ensure_provider(client, "http://llm.test/v1", "k")
    assert found == ProviderResult("p9", False, "http://old/v1", ai=True)
    ensure_model(client, found.id, "scaletest-model", None, ai_provider=found.ai)
    assert seen[3][:2] == ("PATCH", f"{AI_PROVIDERS}/p9")
    assert seen[-1][:2] == ("POST", models) and seen[-1][2]["ai_provider_id"] == "p9"


def test_another_error_from_the_legacy_route_is_not_a_reason_to_switch() -> None:
    client = recording(
        Era.C,
        {("POST", EXPERIMENTAL_PROVIDERS): httpx.Response(500, json={"message": "boom"})},
        [],
    )
    with pytest.raises(RestError) as caught:
        ensure_provider(client, "http://llm.test/v1", "k")
    assert caught.value.status == 500


def test_era_b_reuses_an_existing_legacy_provider_on_409() -> None:
    seen: list[tuple[str, str, Any]] = []
    rows = [
        {
            "id": "00000000-0000-0000-0000-000000000000",
            "provider": "openai-compat",
            "source": "supported",
        },
        {
            "id": "p9",
            "provider": "openai-compat",
            "source": "database",
            "base_url": "http://old/v1",
        },
    ]
    client = recording(
        Era.B,
        {
            ("POST", EXPERIMENTAL_PROVIDERS): httpx.Response(409, json={"message": "exists"}),
            ("GET", EXPERIMENTAL_PROVIDERS): httpx.Response(200, json=rows),
            ("PATCH", f"{EXPERIMENTAL_PROVIDERS}/p9"): httpx.Response(200, json=rows[1]),
        },
        seen,
    )
    found = ensure_provider(client, "http://llm.test/v1", "k")
    assert found == ProviderResult("p9", False, "http://old/v1")
    assert seen[-1][:2] == ("PATCH", f"{EXPERIMENTAL_PROVIDERS}/p9")


@pytest.mark.parametrize(
    ("era", "providers", "models"),
    [
        (Era.A, EXPERIMENTAL_PROVIDERS, "/api/experimental/chats/model-configs"),
        (Era.B, EXPERIMENTAL_PROVIDERS, "/api/experimental/chats/model-configs"),
        (Era.D, "/api/v2/ai/providers", ORG_MODELS),
    ],
)
def test_other_eras_keep_their_routes(era: Era, providers: str, models: str) -> None:
    seen: list[tuple[str, str, Any]] = []
    client = recording(
        era,
        {
            ("POST", providers): httpx.Response(201, json={"id": "p1"}),
            ("POST", models): httpx.Response(201, json={"id": "m1"}),
        },
        seen,
    )
    ensure_provider(client, "http://llm.test/v1", "k")
    ensure_model(client, "p1", "scaletest-model", "o")
    assert [(method, path) for method, path, _ in seen] == [("POST", providers), ("POST", models)]
    model = seen[1][2]
    if era is Era.D:
        assert model["ai_provider_id"] == "p1" and "provider" not in model
    else:
        assert model["provider"] == "openai-compat" and "ai_provider_id" not in model


def test_a_wrong_a_b_guess_still_archives_the_probe_chat() -> None:
    """Before v2.37 only the first frame tells A from B; the preflight guesses A, so the
    probe's archive falls back to B's PATCH (else the probe chat would stay unarchived)."""
    seen: list[tuple[str, str, Any]] = []
    chat_path = PATHS[Era.B].chat(str(CHAT["id"]))
    client = recording(
        Era.A,
        {
            ("POST", PATHS[Era.A].chats()): httpx.Response(201, json=CHAT),
            ("GET", chat_path): httpx.Response(200, json={**CHAT, "status": "waiting"}),
            ("POST", PATHS[Era.A].archive(str(CHAT["id"]))): httpx.Response(
                404, json={"message": "Route not found."}
            ),
        },
        seen,
    )
    probe_chat(client, "o", clock=Clock(), sleep=Clock().sleep)
    assert seen[-1][:2] == ("PATCH", chat_path) and seen[-1][2] == {"archived": True}
    assert client.era is Era.B
