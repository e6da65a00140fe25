"""LLM providers and model configs, in both of Coder's shapes.

Eras a/b configure ``/chats/providers`` (one row per provider type) and
``/chats/model-configs``; era d replaced them with named AI providers
(``/api/v2/ai/providers``) and organization-scoped chat models
(``/api/v2/organizations/{org}/chats/models``). Era c sits between: type-keyed providers
(under ``/api/experimental``) or AI providers, and organization chat models. One store backs
all, so a provider made through any API is the one a chat's turn calls.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from loadtest.protocol.ai_providers import (
    AI_PROVIDER_ID_REQUIRED,
    CONTEXT_LIMIT_DETAIL,
    CONTEXT_LIMIT_REQUIRED,
    MODEL_REQUIRED,
)
from loadtest.protocol.models import (
    ChatModel,
    ChatModelConfig,
    ChatModelProvider,
    ChatModelsResponse,
    ChatProviderConfig,
)
from loadtest.sim.accounts import ORGANIZATION_ID
from loadtest.sim.chaterror import DISPLAY_NAMES
from loadtest.sim.errors import VALIDATION_FAILED, ApiError, not_found

PROVIDER_TYPES = (
    "anthropic",
    "azure",
    "bedrock",
    "google",
    "openai",
    "openai-compat",
    "openrouter",
    "vercel",
)
_AI_PROVIDER_TYPES = (*PROVIDER_TYPES, "copilot")
_DISPLAY = {**DISPLAY_NAMES, "copilot": "GitHub Copilot"}
_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@dataclass(slots=True)
class Provider:
    id: str
    type: str
    name: str
    display_name: str
    base_url: str
    api_key: str | None
    enabled: bool
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class ModelConfig:
    id: str
    provider_id: str
    provider: str
    model: str
    display_name: str
    enabled: bool
    is_default: bool
    context_limit: int
    compression_threshold: int
    call_config: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _base_url_problems(raw: str) -> list[tuple[str, str]]:
    """codersdk's ``validateRequiredAIProviderBaseURL``."""
    if not raw:
        return [("base_url", "base_url is required")]
    parsed = urlparse(raw)
    if not parsed.scheme or not parsed.netloc:
        return [("base_url", "base_url must be an absolute URL (e.g. https://api.example.com/)")]
    if parsed.scheme not in ("http", "https"):
        return [("base_url", f'base_url scheme must be http or https, got "{parsed.scheme}"')]
    return []


class Catalog:
    def __init__(self, clock: Callable[[], datetime], seed_default: bool) -> None:
        self._clock = clock
        self.providers: dict[str, Provider] = {}
        self.models: dict[str, ModelConfig] = {}
        if seed_default:
            provider = self._add_provider("openai", "openai", "OpenAI", "", "sim-key", True)
            self._add_model(provider, "gpt-sim", "Simulated model", 200_000, 70, None, True, True)

    # ------------------------------------------------------------ providers

    def _add_provider(
        self, kind: str, name: str, display: str, base_url: str, key: str | None, enabled: bool
    ) -> Provider:
        now = self._clock()
        provider = Provider(
            str(uuid.uuid4()), kind, name, display, base_url, key, enabled, now, now
        )
        self.providers[provider.id] = provider
        return provider

    def provider(self, ref: str) -> Provider:
        """A provider by id or (eras c/d: AI providers) name; 404 otherwise."""
        for provider in self.providers.values():
            if ref in (provider.id, provider.name):
                return provider
        raise not_found()

    def create_provider(self, body: dict[str, Any]) -> Provider:
        """``POST /chats/providers``: one row per provider type."""
        kind = body.get("provider") or ""
        if kind not in PROVIDER_TYPES:
            raise ApiError(400, "Invalid provider.", f'Unsupported provider "{kind}".')
        if any(p.type == kind for p in self.providers.values()):
            raise ApiError(409, "Chat provider already exists.")
        display = body.get("display_name") or _DISPLAY[kind]
        enabled = body.get("enabled")
        return self._add_provider(
            kind,
            kind,
            display,
            body.get("base_url") or "",
            body.get("api_key") or None,
            True if enabled is None else bool(enabled),
        )

    def create_ai_provider(self, body: dict[str, Any]) -> Provider:
        """``POST /api/v2/ai/providers`` (eras c/d), with codersdk's field validation."""
        kind = body.get("type") or ""
        name = body.get("name") or ""
        base_url = body.get("base_url") or ""
        problems: list[tuple[str, str]] = []
        if not kind:
            problems.append(("type", "type is required"))
        elif kind not in _AI_PROVIDER_TYPES:
            problems.append(("type", f'unsupported provider type "{kind}"'))
        if not name:
            problems.append(("name", "name is required"))
        elif not _NAME.match(name):
            problems.append(
                (
                    "name",
                    f"name must match {_NAME.pattern} (lowercase alphanumeric, hyphens between words)",
                )
            )
        problems += _base_url_problems(base_url)
        if problems:
            raise ApiError(400, VALIDATION_FAILED, validations=problems)
        if any(p.name == name for p in self.providers.values()):
            raise ApiError(409, "AI provider already exists.")
        keys = body.get("api_keys") or []
        return self._add_provider(
            kind,
            name,
            body.get("display_name") or name,
            base_url,
            keys[0] if keys else None,
            bool(body.get("enabled")),
        )

    def update_provider(self, provider: Provider, body: dict[str, Any]) -> Provider:
        """PATCH of either shape: only the fields present change."""
        if body.get("base_url") is not None:
            if body["base_url"] and (problems := _base_url_problems(body["base_url"])):
                raise ApiError(400, VALIDATION_FAILED, validations=problems)
            provider.base_url = body["base_url"]
        if body.get("display_name"):
            provider.display_name = body["display_name"]
        if body.get("enabled") is not None:
            provider.enabled = bool(body["enabled"])
        if body.get("api_key") is not None:
            provider.api_key = body["api_key"] or None
        if isinstance(body.get("api_keys"), list):
            new = [k.get("api_key") for k in body["api_keys"] if isinstance(k, dict)]
            provider.api_key = next((k for k in new if k), provider.api_key)
        provider.updated_at = self._clock()
        return provider

    def delete_provider(self, provider: Provider) -> None:
        del self.providers[provider.id]
        for model in [m for m in self.models.values() if m.provider_id == provider.id]:
            del self.models[model.id]

    def provider_config_wire(self, provider: Provider) -> dict[str, Any]:
        """``ChatProviderConfig`` (eras a-c; c's under ``/api/experimental``)."""
        config = ChatProviderConfig(
            id=provider.id,
            provider=provider.type,
            display_name=provider.display_name,
            enabled=provider.enabled,
            has_api_key=provider.api_key is not None,
            source="database",
            created_at=provider.created_at,
            updated_at=provider.updated_at,
        )
        if provider.base_url:
            config.base_url = provider.base_url
        return config.wire()

    def ai_provider_wire(self, provider: Provider) -> dict[str, Any]:
        """``codersdk.AIProvider`` (eras c/d): keys only masked, settings null."""
        keys = []
        if provider.api_key:
            keys.append(
                {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_OID, provider.id)),
                    "masked": provider.api_key[:2] + "..." + provider.api_key[-2:],
                    "created_at": _iso(provider.created_at),
                }
            )
        return {
            "id": provider.id,
            "type": provider.type,
            "name": provider.name,
            "display_name": provider.display_name,
            "icon": "",
            "enabled": provider.enabled,
            "base_url": provider.base_url,
            "api_keys": keys,
            "settings": None,
            "created_at": _iso(provider.created_at),
            "updated_at": _iso(provider.updated_at),
        }

    # ------------------------------------------------------------ model configs

    def _add_model(
        self,
        provider: Provider,
        model: str,
        display: str,
        context_limit: int,
        threshold: int,
        call_config: dict[str, Any] | None,
        enabled: bool,
        is_default: bool,
    ) -> ModelConfig:
        now = self._clock()
        if not self.models:
            is_default = True
        if is_default:
            for other in self.models.values():
                other.is_default = False
        config = ModelConfig(
            str(uuid.uuid4()),
            provider.id,
            provider.type,
            model,
            display or model,
            enabled,
            is_default,
            context_limit,
            threshold,
            call_config,
            now,
            now,
        )
        self.models[config.id] = config
        return config

    def model(self, ref: str) -> ModelConfig:
        model = self.models.get(ref)
        if model is None:
            raise not_found()
        return model

    def create_model(self, body: dict[str, Any], *, org_scoped: bool) -> ModelConfig:
        """``POST /chats/model-configs`` (by provider type) or, eras c/d, an org chat model
        (by ``ai_provider_id``, with Coder's 400s: protocol §9.8)."""
        if org_scoped:
            ref = body.get("ai_provider_id") or ""
            if not ref:
                raise ApiError(400, AI_PROVIDER_ID_REQUIRED)
            found = self.providers.get(ref)
            if found is None:
                raise ApiError(400, "AI provider not found.")
            provider = found
        else:
            kind = body.get("provider") or ""
            match = next((p for p in self.providers.values() if p.type == kind), None)
            if match is None:
                raise ApiError(400, "Chat provider is not configured.")
            provider = match
        model = body.get("model") or ""
        if not model:
            raise ApiError(400, MODEL_REQUIRED)
        limit = body.get("context_limit") or 0
        if not isinstance(limit, int) or limit <= 0:
            # The detail is §9.8's (org models); the a/b text has none in the spec.
            raise ApiError(
                400, CONTEXT_LIMIT_REQUIRED, CONTEXT_LIMIT_DETAIL if org_scoped else None
            )
        threshold = body.get("compression_threshold")
        if threshold is None:
            threshold = 30 if org_scoped and limit >= 500_000 else 70
        if not isinstance(threshold, int) or not 0 <= threshold <= 100:
            raise ApiError(400, "Compression threshold must be between 0 and 100.")
        if any(m.provider_id == provider.id and m.model == model for m in self.models.values()):
            raise ApiError(409, "Chat model config already exists.")
        enabled = body.get("enabled")
        return self._add_model(
            provider,
            model,
            body.get("display_name") or "",
            limit,
            threshold,
            body.get("model_config"),
            True if enabled is None else bool(enabled),
            bool(body.get("is_default")),
        )

    def update_model(self, model: ModelConfig, body: dict[str, Any]) -> ModelConfig:
        if body.get("model"):
            model.model = body["model"]
        if body.get("display_name"):
            model.display_name = body["display_name"]
        if body.get("enabled") is not None:
            model.enabled = bool(body["enabled"])
        if body.get("context_limit") is not None:
            model.context_limit = int(body["context_limit"])
        if body.get("compression_threshold") is not None:
            model.compression_threshold = int(body["compression_threshold"])
        if body.get("model_config") is not None:
            model.call_config = body["model_config"]
        if body.get("is_default"):
            for other in self.models.values():
                other.is_default = False
            model.is_default = True
        model.updated_at = self._clock()
        return model

    def delete_model(self, model: ModelConfig) -> None:
        del self.models[model.id]

    def default_model(self) -> ModelConfig | None:
        enabled = [m for m in self.models.values() if m.enabled]
        return next((m for m in enabled if m.is_default), enabled[0] if enabled else None)

    def model_config_wire(self, model: ModelConfig) -> dict[str, Any]:
        """``ChatModelConfig`` (eras a/b)."""
        config = ChatModelConfig(
            id=model.id,
            provider=model.provider,
            model=model.model,
            display_name=model.display_name,
            enabled=model.enabled,
            is_default=model.is_default,
            context_limit=model.context_limit,
            compression_threshold=model.compression_threshold,
            created_at=model.created_at,
            updated_at=model.updated_at,
        )
        wire = config.wire()
        if model.call_config is not None:
            wire["model_config"] = model.call_config
        return wire

    def chat_model_wire(self, model: ModelConfig) -> dict[str, Any]:
        """Eras c/d's organization-scoped ``ChatModel``."""
        wire = {
            "id": model.id,
            "organization_id": ORGANIZATION_ID,
            "ai_provider_id": model.provider_id,
            "model": model.model,
            "display_name": model.display_name,
            "enabled": model.enabled,
            "is_default": model.is_default,
            "context_limit": model.context_limit,
            "compression_threshold": model.compression_threshold,
            "created_at": _iso(model.created_at),
            "updated_at": _iso(model.updated_at),
        }
        if model.call_config is not None:
            wire["model_config"] = model.call_config
        return wire

    def models_wire(self) -> dict[str, Any]:
        """``GET /chats/models`` (eras a/b): enabled models grouped by provider type."""
        response = ChatModelsResponse()
        for provider in self.providers.values():
            models = [
                ChatModel(id=m.id, provider=m.provider, model=m.model, display_name=m.display_name)
                for m in self.models.values()
                if m.provider_id == provider.id and m.enabled
            ]
            entry = ChatModelProvider(provider=provider.type, available=True, models=models)
            if provider.api_key is None and not provider.base_url:
                entry.available = False
                entry.unavailable_reason = "missing_api_key"
            response.providers.append(entry)
        return response.model_dump(mode="json", exclude_none=True)

    def org_models_wire(self) -> dict[str, Any]:
        """``OrganizationChatModelsResponse`` (eras c/d)."""
        descriptors = [
            {
                "id": p.id,
                "type": p.type,
                "display_name": p.display_name,
                "icon": "",
                "enabled": p.enabled,
                "has_api_key": p.api_key is not None,
                "has_user_api_key": False,
                "has_effective_api_key": p.api_key is not None,
                "allow_user_api_key": False,
                "available": p.enabled,
            }
            for p in self.providers.values()
        ]
        return {
            "models": [self.chat_model_wire(m) for m in self.models.values()],
            "providers": descriptors,
            "unsupported_providers": [],
        }

    def llm_base_url(self, model_config_id: str, fallback: str | None) -> tuple[str, str] | None:
        """(base URL, API key) a turn of this model calls: the API-configured provider's
        ``base_url`` when it has one, else ``fallback`` (``--llm-url``); None without either."""
        model = self.models.get(model_config_id)
        provider = self.providers.get(model.provider_id) if model else None
        key = (provider.api_key if provider else None) or "chatload-sim"
        if provider is not None and provider.base_url:
            return provider.base_url, key
        return (fallback, key) if fallback else None
