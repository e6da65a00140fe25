"""Coder's NATS subjects: a pubsub channel as the subject its embedded NATS carries it on. No I/O.

Source: coder/coder coderd/x/nats/subject.go (``LegacyEventSubject``, ``ValidateToken``,
``ValidateSubject``) and coderd/x/nats/options.go (``DefaultSubjectPrefix = "coder.v1"``);
subject_test.go's cases (``chat:stream:<uuid>`` -> ``coder.v1.pubsub.chat.stream.<uuid>``)
are this module's unit tests. A legacy pubsub event (``chat:stream:<chat>``,
``chat:owner:<user>``) becomes ``coder.v1.pubsub.`` + the event with every ``:`` turned into
``.``, so each ``:``-separated part is one subject token. A token is ASCII letters, digits,
``_`` and ``-``, never empty: an empty part (``a::b``, a leading or trailing ``:``), a ``.``, a
space, a wildcard (``*``, ``>``) or any non-ASCII character is refused, as Coder refuses it.
"""

from __future__ import annotations

from typing import Final

#: coderd/x/nats/options.go ``DefaultSubjectPrefix``.
DEFAULT_SUBJECT_PREFIX: Final = "coder.v1"
#: What ``LegacyEventSubject`` puts before a legacy event (subject.go).
LEGACY_PREFIX: Final = DEFAULT_SUBJECT_PREFIX + ".pubsub."
#: Every chat stream's notifies (a NATS wildcard: one subscription sees all chats).
CHAT_STREAM_WILDCARD: Final = LEGACY_PREFIX + "chat.stream.>"

_TOKEN_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class SubjectError(ValueError):
    """A channel or subject Coder would refuse; the message names it and the bad part."""


def validate_token(token: str) -> None:
    """One subject token, as ``ValidateToken``: ``[A-Za-z0-9_-]+``."""
    if not token:
        raise SubjectError("empty subject token")
    for char in token:
        if char not in _TOKEN_CHARS:
            raise SubjectError(f"subject token {token!r} contains disallowed character {char!r}")


def legacy_event_subject(event: str) -> str:
    """The NATS subject of a legacy pubsub channel (Go: ``LegacyEventSubject``)."""
    if not event:
        raise SubjectError("legacy event: the pubsub channel is empty")
    parts = event.split(":")
    for part in parts:
        try:
            validate_token(part)
        except SubjectError as exc:
            raise SubjectError(f"legacy event {event!r}: {exc}") from None
    return LEGACY_PREFIX + ".".join(parts)


def validate_subject(subject: str) -> None:
    """A whole publish subject (Go: ``ValidateSubject``): the ``coder.v1.`` prefix, at least one
    token after it, every token valid (so no wildcards)."""
    prefix = DEFAULT_SUBJECT_PREFIX + "."
    if not subject:
        raise SubjectError("the subject is empty")
    if not subject.startswith(prefix):
        raise SubjectError(f"subject {subject!r} lacks the prefix {prefix!r}")
    rest = subject[len(prefix) :]
    if not rest:
        raise SubjectError(f"subject {subject!r} has no tokens after the prefix")
    for token in rest.split("."):
        try:
            validate_token(token)
        except SubjectError as exc:
            raise SubjectError(f"subject {subject!r}: {exc}") from None
