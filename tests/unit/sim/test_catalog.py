"""The providers and models a deployment knows, driven directly: the seeded default, Coder's
validation of AI providers and model configs, the default model, and where an LLM turn goes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from loadtest.sim.catalog import Catalog
from loadtest.sim.errors import ApiError

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def catalog(seed: bool = True) -> Catalog:
    return Catalog(lambda: NOW, seed)


def refused(call: Any, *args: Any, **kw: Any) -> ApiError:
    with pytest.raises(ApiError) as error:
        call(*args, **kw)
    return error.value


def test_a_seeded_deployment_has_one_enabled_default_model_and_an_empty_one_none() -> None:
    seeded = catalog()
    model = seeded.default_model()
    assert model is not None and model.is_default and model.model == "gpt-sim"
    assert seeded.provider(model.provider_id).type == "openai"
    assert catalog(seed=False).default_model() is None


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["type", "name", "base_url"]),
        ({"type": "nope", "name": "a", "base_url": "https://x/"}, ["type"]),
        ({"type": "openai", "name": "Bad_Name", "base_url": "https://x/"}, ["name"]),
        ({"type": "openai", "name": "a", "base_url": "x.example"}, ["base_url"]),
        ({"type": "openai", "name": "a", "base_url": "ftp://x/"}, ["base_url"]),
    ],
)
def test_an_ai_provider_is_validated_field_by_field(
    body: dict[str, Any], fields: list[str]
) -> None:
    error = refused(catalog(seed=False).create_ai_provider, body)
    assert error.status == 400 and error.validations is not None
    assert [field for field, _ in error.validations] == fields


def test_an_ai_provider_is_found_by_id_or_name_and_its_name_is_unique() -> None:
    cat = catalog(seed=False)
    body = {"type": "openai-compat", "name": "local-llm", "base_url": "http://127.0.0.1:9/v1"}
    provider = cat.create_ai_provider({**body, "api_keys": ["k1"]})
    assert cat.provider("local-llm") is cat.provider(provider.id) is provider
    assert provider.api_key == "k1" and not provider.enabled
    assert refused(cat.create_ai_provider, body).status == 409
    assert refused(cat.provider, "nope").status == 404


def test_a_legacy_provider_is_one_per_type() -> None:
    cat = catalog(seed=False)
    cat.create_provider({"provider": "anthropic"})
    assert refused(cat.create_provider, {"provider": "anthropic"}).status == 409
    assert refused(cat.create_provider, {"provider": "mystery"}).status == 400


def test_a_model_config_is_checked_in_coders_order_and_unique_per_provider() -> None:
    cat = catalog()
    assert refused(cat.create_model, {"provider": "anthropic"}, org_scoped=False).status == 400
    base = {"provider": "openai", "model": "gpt-x"}
    assert refused(cat.create_model, {"provider": "openai"}, org_scoped=False).status == 400
    limit = refused(cat.create_model, base, org_scoped=False)
    assert limit.status == 400 and "context" in limit.message.lower()
    bad = {**base, "context_limit": 1000, "compression_threshold": 101}
    assert refused(cat.create_model, bad, org_scoped=False).status == 400
    model = cat.create_model({**base, "context_limit": 1000}, org_scoped=False)
    assert model.compression_threshold == 70 and model.enabled
    again = refused(cat.create_model, {**base, "context_limit": 5}, org_scoped=False)
    assert again.status == 409


def test_an_org_model_needs_its_provider_and_a_big_context_compresses_sooner() -> None:
    cat = catalog(seed=False)
    assert refused(cat.create_model, {"model": "m"}, org_scoped=True).status == 400
    lost = refused(cat.create_model, {"ai_provider_id": "x", "model": "m"}, org_scoped=True)
    assert lost.message == "AI provider not found."
    provider = cat.create_ai_provider({"type": "openai", "name": "p", "base_url": "https://x/"})
    body = {"ai_provider_id": provider.id, "model": "m", "context_limit": 500_000}
    assert cat.create_model(body, org_scoped=True).compression_threshold == 30


def test_making_a_model_the_default_unsets_the_others_and_deleting_a_provider_drops_its_models() -> (
    None
):
    cat = catalog()
    first = cat.default_model()
    assert first is not None
    other = cat.create_model(
        {"provider": "openai", "model": "gpt-2", "context_limit": 10}, org_scoped=False
    )
    cat.update_model(other, {"is_default": True})
    assert cat.default_model() is other and not first.is_default
    cat.delete_provider(cat.provider(first.provider_id))
    assert cat.models == {}


def test_an_llm_turn_calls_the_providers_base_url_else_the_fallback_else_none() -> None:
    cat = catalog()
    model = cat.default_model()
    assert model is not None
    assert cat.llm_base_url(model.id, None) is None  # generated here
    assert cat.llm_base_url(model.id, "http://127.0.0.1:9/v1") == (
        "http://127.0.0.1:9/v1",
        "sim-key",
    )
    provider = cat.provider(model.provider_id)
    cat.update_provider(provider, {"base_url": "https://llm.example/v1", "api_key": "k2"})
    assert cat.llm_base_url(model.id, "http://127.0.0.1:9/v1") == ("https://llm.example/v1", "k2")
    bad = refused(cat.update_provider, provider, {"base_url": "not a url"})
    assert bad.status == 400 and provider.base_url == "https://llm.example/v1"
