"""NATS subjects as Coder makes them: coderd/x/nats/subject_test.go's cases, one for one."""

from __future__ import annotations

import pytest

from loadtest.protocol.notify import stream_channel
from loadtest.protocol.subjects import (
    CHAT_STREAM_WILDCARD,
    SubjectError,
    legacy_event_subject,
    validate_subject,
    validate_token,
)

UUID1 = "11111111-1111-1111-1111-111111111111"


@pytest.mark.parametrize(
    ("event", "subject"),
    [
        ("workspace", "coder.v1.pubsub.workspace"),
        (f"workspace_owner:{UUID1}", f"coder.v1.pubsub.workspace_owner.{UUID1}"),
        (
            "inbox_notification:owner:22222222-2222-2222-2222-222222222222",
            "coder.v1.pubsub.inbox_notification.owner.22222222-2222-2222-2222-222222222222",
        ),
        ("agent-logs:3333", "coder.v1.pubsub.agent-logs.3333"),
        (
            "chat:stream:44444444-4444-4444-4444-444444444444",
            "coder.v1.pubsub.chat.stream.44444444-4444-4444-4444-444444444444",
        ),
    ],
)
def test_a_legacy_event_becomes_its_subject_and_that_subject_is_valid(
    event: str, subject: str
) -> None:
    assert legacy_event_subject(event) == subject
    validate_subject(subject)


@pytest.mark.parametrize(
    "event",
    ["", ":foo", "foo:", "foo::bar", "foo bar", "foo\tbar", "foo\nbar", "foo:*", "foo:>",
     "foo.bar", "café", "foo/bar"],
)  # fmt: skip
def test_a_legacy_event_coder_refuses_is_refused_naming_it(event: str) -> None:
    with pytest.raises(SubjectError) as caught:
        legacy_event_subject(event)
    if event:
        assert repr(event) in str(caught.value)


@pytest.mark.parametrize(
    "token", ["", "foo bar", " foo", "foo ", "*", "foo*", ">", "foo>", "foo.bar", "café",
              "foo🎉", "foo/bar", "foo:bar"],
)  # fmt: skip
def test_a_token_outside_letters_digits_underscore_hyphen_is_refused(token: str) -> None:
    with pytest.raises(SubjectError):
        validate_token(token)


@pytest.mark.parametrize("token", ["foo", "FOO", "foo123", "foo_bar", "foo-bar", "a", UUID1])
def test_tokens_coder_accepts_are_accepted(token: str) -> None:
    validate_token(token)


@pytest.mark.parametrize(
    "subject",
    ["", "other.v1.foo", "coder.v1", "coder.v1.", "coder.v1.foo.*", "coder.v1.foo.>",
     "coder.v1.foo..bar", "coder.v1.café", "coder.v1.foo bar"],
)  # fmt: skip
def test_an_invalid_subject_is_refused(subject: str) -> None:
    with pytest.raises(SubjectError):
        validate_subject(subject)


def test_every_chat_streams_subject_falls_under_the_wildcard() -> None:
    subject = legacy_event_subject(stream_channel(UUID1))
    assert subject.startswith(CHAT_STREAM_WILDCARD.removesuffix(">"))
