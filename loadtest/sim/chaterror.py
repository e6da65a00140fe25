"""Provider errors as Coder's ``chaterror`` classifies and words them (protocol section 8.6).

The kind follows the provider's HTTP status; the terminal message names the provider by its
display name ("Subject"); a ``retry`` event carries the error's own message when it is
retryable, else a short form. (Read in coder/coder's ``coderd/x/chatd/chaterror``
``classify.go`` and ``message.go`` for the spec; the strings here are the spec's.)
"""

from __future__ import annotations

from typing import Final

from loadtest.protocol.models import ErrorKind
from loadtest.sim.events import Failure

#: Provider type -> display name (``Subject``); unknown types are "the AI provider".
DISPLAY_NAMES: Final = {
    "anthropic": "Anthropic",
    "azure": "Azure OpenAI",
    "bedrock": "AWS Bedrock",
    "google": "Google",
    "openai": "OpenAI",
    "openai-compat": "OpenAI Compatible",
    "openrouter": "OpenRouter",
    "vercel": "Vercel AI Gateway",
}
UNKNOWN_SUBJECT: Final = "the AI provider"

#: kind -> terminal message; ``{Subject}`` starts a sentence, ``{subject}`` stands inside one.
TERMINAL: Final[dict[str, str]] = {
    ErrorKind.OVERLOADED: "{Subject} is temporarily overloaded.",
    ErrorKind.RATE_LIMIT: "{Subject} is rate limiting requests.",
    ErrorKind.TIMEOUT: "{Subject} is temporarily unavailable.",
    ErrorKind.STREAM_SILENCE_TIMEOUT: "{Subject} did not send response data in time.",
    ErrorKind.USAGE_LIMIT: "The usage quota for {subject} has been exceeded. Check the billing "
    "and quota settings for the provider account.",
    ErrorKind.AUTH: "Authentication with {subject} failed. Check the API key and permissions.",
    ErrorKind.CONFIG: "{Subject} rejected the model configuration. Check the selected model "
    "and provider settings.",
    ErrorKind.MISSING_KEY: "This conversation was started with an API key that is no longer "
    "available. Send your message again to continue.",
    ErrorKind.PROVIDER_DISABLED: "The {DisplayName} provider has been disabled. Contact your "
    "Coder administrator.",
    ErrorKind.CONTENT_FILTER: "{Subject} blocked this response under its content policy.",
    ErrorKind.GENERIC: "{Subject} returned an unexpected error.",
}
#: The short forms a retry event carries for kinds that are not retryable.
RETRY_SHORT: Final[dict[str, str]] = {
    ErrorKind.AUTH: "Authentication with {subject} failed.",
    ErrorKind.MISSING_KEY: "The API key for this conversation is no longer available.",
    ErrorKind.PROVIDER_DISABLED: "The {DisplayName} provider has been disabled by an "
    "administrator.",
}
#: A generic error with no provider to name.
NO_PROVIDER: Final = "The chat request failed unexpectedly."
#: A timeout that is not retryable and has no status.
TIMED_OUT: Final = "The request timed out before it completed."

#: The status an injected error of each kind pretends the provider answered (0: none).
STATUS: Final[dict[str, int]] = {
    ErrorKind.OVERLOADED: 529,
    ErrorKind.RATE_LIMIT: 429,
    ErrorKind.TIMEOUT: 504,
    ErrorKind.STREAM_SILENCE_TIMEOUT: 0,
    ErrorKind.STARTUP_TIMEOUT: 0,
    ErrorKind.GENERIC: 500,
    ErrorKind.AUTH: 401,
    ErrorKind.CONFIG: 400,
    ErrorKind.MISSING_KEY: 0,
    ErrorKind.PROVIDER_DISABLED: 0,
    ErrorKind.CONTENT_FILTER: 400,
    ErrorKind.USAGE_LIMIT: 0,
}
RETRYABLE_KINDS: Final = frozenset(
    {
        ErrorKind.OVERLOADED,
        ErrorKind.RATE_LIMIT,
        ErrorKind.TIMEOUT,
        ErrorKind.STREAM_SILENCE_TIMEOUT,
        ErrorKind.STARTUP_TIMEOUT,
        ErrorKind.GENERIC,
    }
)


def classify(status: int) -> tuple[str, bool]:
    """(kind, retryable) of a provider's HTTP status."""
    if status in (408, 502, 503, 504):
        return ErrorKind.TIMEOUT, True
    if status == 529:
        return ErrorKind.OVERLOADED, True
    if status == 429:
        return ErrorKind.RATE_LIMIT, True
    if status == 500:
        return ErrorKind.GENERIC, True
    if status in (401, 403):
        return ErrorKind.AUTH, False
    return ErrorKind.GENERIC, False


def _words(template: str, provider: str) -> str:
    display = DISPLAY_NAMES.get(provider)
    subject = display or UNKNOWN_SUBJECT
    return template.format(
        Subject=subject[0].upper() + subject[1:],
        subject=subject,
        DisplayName=display or provider or "AI",
    )


def message(kind: str, provider: str, retryable: bool, status: int) -> str:
    """The terminal message (the error event, ``last_error``)."""
    if kind == ErrorKind.GENERIC and not provider:
        return NO_PROVIDER
    if kind == ErrorKind.TIMEOUT and not retryable and not status:
        return TIMED_OUT
    return _words(TERMINAL.get(kind, TERMINAL[ErrorKind.GENERIC]), provider)


def retry_message(failure: Failure) -> str:
    """What a ``retry`` event says of ``failure``."""
    if failure.retryable and failure.message:
        return failure.message
    short = RETRY_SHORT.get(failure.kind)
    return _words(short, failure.provider) if short else failure.message


def failure(
    kind: str,
    provider: str,
    status_code: int | None = None,
    detail: str = "",
    retry_after_s: float = 0.0,
) -> Failure:
    """The failure Coder reports for an error of ``kind`` (optionally a real HTTP status)."""
    status = STATUS.get(kind, 500) if status_code is None else status_code
    # A real status decides; none (a cut stream, a silence) leaves it to the kind.
    retryable = classify(status)[1] if status_code else kind in RETRYABLE_KINDS
    made = Failure(
        kind,
        message(kind, provider, retryable, status),
        status,
        retryable,
        provider,
        detail or f"upstream answered HTTP {status}",
        retry_after_s,
    )
    made.retry_text = retry_message(made)
    return made


def from_status(status: int, provider: str, detail: str, retry_after_s: float = 0.0) -> Failure:
    """A provider's HTTP error, classified by its status."""
    kind, _ = classify(status)
    return failure(kind, provider, status, detail, retry_after_s)
