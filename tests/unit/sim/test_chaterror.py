"""Protocol section 8.6, row by row: provider errors classified by status, worded with the
provider's display name, retried after the backoff or the provider's Retry-After."""

from __future__ import annotations

import httpx
import pytest

from loadtest.protocol.models import ErrorKind
from loadtest.sim.chaterror import classify, failure, from_status, message
from loadtest.sim.llm import retry_after_s
from loadtest.sim.plan import retry_delay_s


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (408, "timeout", True),
        (502, "timeout", True),
        (503, "timeout", True),
        (504, "timeout", True),
        (529, "overloaded", True),
        (429, "rate_limit", True),
        (500, "generic", True),
        (401, "auth", False),
        (403, "auth", False),
        (400, "generic", False),
        (404, "generic", False),
    ],
)
def test_the_status_decides_the_kind(status: int, kind: str, retryable: bool) -> None:
    assert classify(status) == (kind, retryable)


@pytest.mark.parametrize(
    ("kind", "provider", "message"),
    [
        ("overloaded", "openai-compat", "OpenAI Compatible is temporarily overloaded."),
        ("rate_limit", "anthropic", "Anthropic is rate limiting requests."),
        ("timeout", "bedrock", "AWS Bedrock is temporarily unavailable."),
        ("stream_silence_timeout", "google", "Google did not send response data in time."),
        (
            "usage_limit",
            "openrouter",
            "The usage quota for OpenRouter has been exceeded. Check the billing and quota "
            "settings for the provider account.",
        ),
        (
            "auth",
            "azure",
            "Authentication with Azure OpenAI failed. Check the API key and permissions.",
        ),
        (
            "config",
            "vercel",
            "Vercel AI Gateway rejected the model configuration. Check the selected model and "
            "provider settings.",
        ),
        (
            "missing_key",
            "openai",
            "This conversation was started with an API key that is no longer available. Send "
            "your message again to continue.",
        ),
        (
            "provider_disabled",
            "openai",
            "The OpenAI provider has been disabled. Contact your Coder administrator.",
        ),
        ("content_filter", "openai", "OpenAI blocked this response under its content policy."),
        ("generic", "openai", "OpenAI returned an unexpected error."),
        ("generic", "", "The chat request failed unexpectedly."),
        ("overloaded", "mystery", "The AI provider is temporarily overloaded."),
        (
            "auth",
            "mystery",
            "Authentication with the AI provider failed. Check the API key and permissions.",
        ),
    ],
)
def test_terminal_messages_name_the_provider(kind: str, provider: str, message: str) -> None:
    assert failure(kind, provider).message == message


def test_a_retry_says_the_errors_own_message_or_its_short_form() -> None:
    assert failure(ErrorKind.OVERLOADED, "openai").retry_text == "OpenAI is temporarily overloaded."
    assert failure(ErrorKind.AUTH, "openai").retry_text == "Authentication with OpenAI failed."
    assert (
        failure(ErrorKind.MISSING_KEY, "openai").retry_text
        == "The API key for this conversation is no longer available."
    )
    assert (
        failure(ErrorKind.PROVIDER_DISABLED, "anthropic").retry_text
        == "The Anthropic provider has been disabled by an administrator."
    )


def test_a_timeout_with_no_status_that_is_not_retried() -> None:
    assert message("timeout", "openai", retryable=False, status=0) == (
        "The request timed out before it completed."
    )


def test_the_retry_waits_for_the_backoff_or_the_providers_retry_after() -> None:
    assert [retry_delay_s(n) for n in (1, 2, 3, 7, 8)] == [1, 2, 4, 60, 60]
    limited = from_status(429, "openai-compat", "slow down", retry_after_s=5.0)
    assert (limited.kind, limited.retryable, limited.status_code) == ("rate_limit", True, 429)
    assert retry_delay_s(1, limited.retry_after_s) == 5.0
    assert retry_delay_s(7, limited.retry_after_s) == 60.0


def test_the_providers_retry_after_is_read_from_its_headers() -> None:
    assert retry_after_s(httpx.Headers({"retry-after": "3"})) == 3.0
    assert retry_after_s(httpx.Headers({"retry-after-ms": "1500", "retry-after": "2"})) == 1.5
    assert retry_after_s(httpx.Headers({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"})) == 0.0
    assert retry_after_s(httpx.Headers()) == 0.0
