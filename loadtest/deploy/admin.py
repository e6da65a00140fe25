"""The admin calls ``setup`` and ``teardown`` make, per era (protocol sections 8.2, 9.8).

Eras A/B configure the LLM with ``/chats/providers`` and ``/chats/model-configs`` (one
provider row per type). Era C (v2.37) reserves those under ``/api/v2/chats`` (404), and its
legacy ``/api/experimental/chats/providers`` answers 410 (§9.8); its models are the
organization's chat models. Era D uses AI providers (``/api/v2/ai/providers``, by name) and
organization chat models. ``ChatPaths`` knows where each lives. A 410 from a legacy provider
route (era C, and late era B builds) means "use AI providers": setup switches to them, and
names the provider by ``ai_provider_id`` in the model config. Creating what already exists
(409) reuses it, as Coder's own scaletest does, and remembers what it changed so teardown can
put it back.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loadtest.client.rest import ChatClient, RestError
from loadtest.protocol.ai_providers import LEGACY_GONE_STATUS
from loadtest.protocol.eras import AI_PROVIDERS, Era
from loadtest.protocol.models import (
    CreateChatModelConfigRequest,
    CreateChatProviderConfigRequest,
    CreateFirstUserRequest,
    GenerateAPIKeyResponse,
    LoginWithPasswordRequest,
    LoginWithPasswordResponse,
    UpdateChatProviderConfigRequest,
)

PROVIDER_TYPE = "openai-compat"
#: Era D names providers; lowercase words joined by hyphens.
PROVIDER_NAME = "chatload-mock-llm"
PROVIDER_DISPLAY = "chatload mock LLM"
CONTEXT_LIMIT = 4096


@dataclass(slots=True)
class ProviderResult:
    id: str
    created: bool
    #: The base URL a reused provider had, to restore on teardown.
    previous_base_url: str | None = None
    #: An AI provider (``/api/v2/ai/providers``): era D, or a legacy route that answered 410.
    ai: bool = False


def provider_path(client: ChatClient, provider_id: str, ai: bool) -> str:
    """Where a provider setup made lives: an AI provider, or the era's legacy row."""
    return f"{AI_PROVIDERS}/{provider_id}" if ai else client.paths.provider(provider_id)


def ensure_provider(client: ChatClient, llm_url: str, api_key: str) -> ProviderResult:
    """An openai-compat provider pointing at ``llm_url``: created, or reused on 409. Before
    era D the legacy route first; its 410 (§9.8) sends setup to the AI providers."""
    if client.era is not Era.D:
        try:
            return _ensure_chat_provider(client, llm_url, api_key)
        except RestError as exc:
            if exc.status != LEGACY_GONE_STATUS:
                raise
    return _ensure_ai_provider(client, llm_url, api_key)


def _ensure_ai_provider(client: ChatClient, llm_url: str, api_key: str) -> ProviderResult:
    body: dict[str, Any] = {
        "type": PROVIDER_TYPE,
        "name": PROVIDER_NAME,
        "display_name": PROVIDER_DISPLAY,
        "base_url": llm_url,
        "api_keys": [api_key],
        "enabled": True,
    }
    try:
        made = client.call("create_ai_provider", "POST", AI_PROVIDERS, body, expect=(201,))
        return ProviderResult(str(made.body["id"]), created=True, ai=True)
    except RestError as exc:
        if exc.status != 409:
            raise
    found = client.call("get_ai_provider", "GET", f"{AI_PROVIDERS}/{PROVIDER_NAME}").body
    client.call(
        "update_ai_provider",
        "PATCH",
        f"{AI_PROVIDERS}/{found['id']}",
        {"base_url": llm_url, "enabled": True},
    )
    return ProviderResult(str(found["id"]), False, str(found.get("base_url") or ""), ai=True)


def _ensure_chat_provider(client: ChatClient, llm_url: str, api_key: str) -> ProviderResult:
    """Eras A-C's legacy rows: one provider per type (C's at /api/experimental/chats/providers,
    where Coder at 004053e8 answers 410)."""
    paths = client.paths
    body = CreateChatProviderConfigRequest(
        provider=PROVIDER_TYPE,
        display_name=PROVIDER_DISPLAY,
        api_key=api_key,
        base_url=llm_url,
        enabled=True,
    ).wire()
    try:
        made = client.call("create_provider", "POST", paths.providers(), body, expect=(201,))
        return ProviderResult(str(made.body["id"]), created=True)
    except RestError as exc:
        if exc.status != 409:
            raise
    rows = client.call("list_providers", "GET", paths.providers()).body or []
    found = next(
        r
        for r in rows
        if r.get("provider") == PROVIDER_TYPE and r.get("source", "database") == "database"
    )
    client.call(
        "update_provider",
        "PATCH",
        paths.provider(str(found["id"])),
        UpdateChatProviderConfigRequest(base_url=llm_url, api_key=api_key, enabled=True).wire(),
    )
    return ProviderResult(str(found["id"]), False, str(found.get("base_url") or ""))


def ensure_model(
    client: ChatClient,
    provider_id: str,
    model: str,
    organization: str | None,
    *,
    ai_provider: bool = False,
) -> tuple[str, bool]:
    """The model config (eras C/D: organization chat model) chats will use, and if we made
    it. It names an AI provider (eras C/D, or ``ai_provider``) by ``ai_provider_id``."""
    request = CreateChatModelConfigRequest(
        provider=PROVIDER_TYPE,
        model=model,
        display_name=f"{model} (chatload)",
        context_limit=CONTEXT_LIMIT,
        is_default=True,
        enabled=True,
    )
    body = request.wire()
    path = client.paths.model_configs(organization or "default")
    if client.paths.org_scoped_models or ai_provider:
        # An organization chat model names its AI provider instead of a provider type
        # (C and D: codersdk at 004053e8, protocol §9.8).
        body.pop("provider")
        body["ai_provider_id"] = provider_id
    try:
        made = client.call("create_model_config", "POST", path, body, expect=(201,))
        return str(made.body["id"]), True
    except RestError as exc:
        if exc.status != 409:
            raise
    listed = client.call("list_model_configs", "GET", path).body
    rows = listed.get("models", []) if isinstance(listed, dict) else listed or []
    found = next(r for r in rows if r.get("model") == model)
    return str(found["id"]), False


#: Coder's scaletest waits for a probe chat this way before any load (section 8.2): each
#: replica caches provider config for 10 s, so a chat too early may meet a stale one.
PROBE_PERIOD_S = 0.5
PROBE_TIMEOUT_S = 15.0
PROBE_PROMPT = "chatload setup probe: reply with one word."


class ProbeError(Exception):
    """The deployment did not answer a probe chat in time, or answered with an error."""


def probe_chat(
    client: ChatClient,
    organization: str | None,
    *,
    timeout: float = PROBE_TIMEOUT_S,
    period: float = PROBE_PERIOD_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Create a chat and poll it every ``period`` until it is ``waiting`` (at most
    ``timeout``), then archive it; the seconds it took."""
    start = clock()
    chat, _ = client.create_chat(PROBE_PROMPT, organization)
    try:
        while True:
            body = client.call("probe_chat", "GET", client.paths.chat(chat.id)).body
            found = body.get("chat", body) if isinstance(body, dict) else {}
            status = found.get("status") if isinstance(found, dict) else None
            if status == "waiting":
                return clock() - start
            if status == "error":
                error = found.get("last_error")
                message = error.get("message") if isinstance(error, dict) else error
                raise ProbeError(f"the probe chat ended in error: {message or 'no message'}")
            if clock() - start >= timeout:
                raise ProbeError(
                    f"the probe chat was still {status!r} after {timeout:g} s: is the LLM "
                    "reachable from the deployment?"
                )
            sleep(period)
    finally:
        # An active chat refuses (era D); teardown archives what remains.
        with contextlib.suppress(RestError):
            archive_chat(client, chat.id)


def archive_chat(client: ChatClient, chat_id: str) -> None:
    """Archive a chat. Before v2.37 only a stream's first frame tells A (``POST /archive``)
    from B (``PATCH``), so the preflight's first guess (A) may pick the wrong verb: a
    404/405 then tries the other era's once, and the client keeps the one that worked."""
    try:
        client.archive(chat_id)
    except RestError as exc:
        if exc.status not in (404, 405) or client.era not in (Era.A, Era.B):
            raise
        client.era = Era.B if client.era is Era.A else Era.A
        client.archive(chat_id)


def create_user(
    client: ChatClient, index: int, run_id: str, organization: str | None
) -> tuple[str, str]:
    """A load-test user and an API key for it: (user id, token)."""
    username = f"chatload-{run_id}-{index}"
    body: dict[str, Any] = {
        "email": f"{username}@chatload.invalid",
        "username": username,
        "name": f"chatload load user {index}",
        "password": secrets.token_urlsafe(24),
        "login_type": "password",
    }
    if organization:
        body["organization_ids"] = [organization]
    user = client.call("create_user", "POST", "/api/v2/users", body, expect=(201,)).body
    user_id = str(user["id"])
    key = client.call("create_api_key", "POST", f"/api/v2/users/{user_id}/keys", expect=(201,))
    return user_id, GenerateAPIKeyResponse.model_validate(key.body).key


def bootstrap_first_user(client: ChatClient, email: str, password: str) -> str:
    """Create a fresh deployment's first (owner) user and log in: its session token."""
    try:
        client.call("first_user_exists", "GET", "/api/v2/users/first")
    except RestError as exc:
        if exc.status != 404:
            raise
    else:
        raise RestError(
            "first_user", 409, "The deployment already has its first user; pass --token."
        )
    username = email.split("@", 1)[0].replace(".", "-")[:32] or "admin"
    first = CreateFirstUserRequest(email=email, username=username, password=password, trial=False)
    client.call("create_first_user", "POST", "/api/v2/users/first", first.wire(), expect=(201,))
    login = LoginWithPasswordRequest(email=email, password=password).wire()
    answer = client.call("login", "POST", "/api/v2/users/login", login, expect=(201,))
    return LoginWithPasswordResponse.model_validate(answer.body).session_token


def delete_quietly(client: ChatClient, name: str, path: str) -> bool:
    """DELETE that treats 'already gone' as done; True when something was deleted."""
    try:
        client.call(name, "DELETE", path, expect=(200, 204))
    except RestError as exc:
        if exc.status in (404, 410):
            return False
        raise
    return True


def delete_provider(client: ChatClient, provider_id: str, ai: bool = False) -> bool:
    return delete_quietly(client, "delete_provider", provider_path(client, provider_id, ai))


def delete_model(client: ChatClient, model_id: str, organization: str | None) -> bool:
    path = client.paths.model_config(model_id, organization or "default")
    return delete_quietly(client, "delete_model_config", path)


def restore_provider(client: ChatClient, provider_id: str, base_url: str, ai: bool = False) -> None:
    path = provider_path(client, provider_id, ai)
    try:
        client.call("restore_provider", "PATCH", path, {"base_url": base_url})
    except RestError as exc:
        if exc.status not in (404, 410):
            raise
