"""The protocol's eras, their paths, and how to tell which one a server speaks.

See ``spec/coder-chats-protocol.md`` section 0: A (seed, envelope frames), B (raw arrays),
C (dual mount under ``/api/v2``), D (``/api/v2`` only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Era(StrEnum):
    A = "a"
    B = "b"
    C = "c"
    D = "d"


EXPERIMENTAL_BASE = "/api/experimental/chats"
V2_BASE = "/api/v2/chats"
#: Era D's named AI providers (codersdk at 004053e8); C has them too (section 8.2).
AI_PROVIDERS = "/api/v2/ai/providers"


def org_models(organization: str = "default") -> str:
    """An organization's chat models (eras C and D); ``default`` names the default one."""
    return f"/api/v2/organizations/{organization}/chats/models"


@dataclass(frozen=True, slots=True)
class ChatPaths:
    """Where each chats endpoint lives in one era (and how archiving is done there)."""

    era: Era
    base: str
    #: Era A archives with ``POST /chats/{id}/archive``; later eras with ``PATCH /chats/{id}``.
    archive_by_post: bool
    #: Era A answers ``GET /chats/{id}`` with ChatWithMessages; later eras with a bare Chat.
    get_returns_messages: bool
    #: Era A frames are ``{type, data}`` envelopes; later eras send bare arrays.
    envelope_frames: bool
    #: Era A/B have a ``pending`` status between a post and ``running``.
    has_pending: bool
    #: Era D answers promote with 202 and a message; era A with 200 and the ChatMessage.
    promote_accepted: bool
    #: Eras B-D require ``organization_id`` on create (400 "organization_id is required.").
    needs_organization: bool

    def chats(self) -> str:
        return self.base

    def chat(self, chat_id: str) -> str:
        return f"{self.base}/{chat_id}"

    def messages(self, chat_id: str) -> str:
        return f"{self.base}/{chat_id}/messages"

    def message(self, chat_id: str, message_id: int) -> str:
        return f"{self.base}/{chat_id}/messages/{message_id}"

    def stream(self, chat_id: str) -> str:
        return f"{self.base}/{chat_id}/stream"

    def interrupt(self, chat_id: str) -> str:
        return f"{self.base}/{chat_id}/interrupt"

    def archive(self, chat_id: str) -> str:
        return f"{self.base}/{chat_id}/archive" if self.archive_by_post else self.chat(chat_id)

    def queued(self, chat_id: str, queued_id: int) -> str:
        return f"{self.base}/{chat_id}/queue/{queued_id}"

    def promote(self, chat_id: str, queued_id: int) -> str:
        return f"{self.base}/{chat_id}/queue/{queued_id}/promote"

    def models(self, organization: str = "default") -> str:
        """The model catalog: ``/chats/models`` (A/B); from C on the organization's chat
        models (PR #28632 removed ``/chats/models``; section 8.2)."""
        if self.org_scoped_models:
            return org_models(organization)
        return f"{self.base}/models"

    def providers(self) -> str:
        """Where LLM providers are configured (section 8.2): ``/chats/providers`` in A/B; in
        C the experimental mount's (its ``/api/v2/chats/providers`` is reserved, 404); in D
        the AI providers, whose body differs (``CreateAIProviderRequest``, by name)."""
        if self.era is Era.D:
            return AI_PROVIDERS
        if self.era is Era.C:
            return f"{EXPERIMENTAL_BASE}/providers"
        return f"{self.base}/providers"

    def provider(self, provider_id: str) -> str:
        return f"{self.providers()}/{provider_id}"

    def model_configs(self, organization: str = "default") -> str:
        """Where model configs are created: ``/chats/model-configs`` in A/B; from C on the
        organization's chat models (``/api/v2/chats/model-configs`` is reserved, 404)."""
        if self.org_scoped_models:
            return org_models(organization)
        return f"{self.base}/model-configs"

    def model_config(self, config_id: str, organization: str = "default") -> str:
        return f"{self.model_configs(organization)}/{config_id}"

    @property
    def org_scoped_models(self) -> bool:
        """C and D keep chat models per organization (section 8.2)."""
        return self.era in (Era.C, Era.D)


PATHS: dict[Era, ChatPaths] = {
    Era.A: ChatPaths(Era.A, EXPERIMENTAL_BASE, True, True, True, True, False, False),
    Era.B: ChatPaths(Era.B, EXPERIMENTAL_BASE, False, False, False, True, False, True),
    Era.C: ChatPaths(Era.C, V2_BASE, False, False, False, False, False, True),
    Era.D: ChatPaths(Era.D, V2_BASE, False, False, False, False, True, True),
}

#: ``version`` the simulator reports in ``/api/v2/buildinfo`` for each era it speaks.
SIMULATED_VERSIONS: dict[Era, str] = {
    Era.A: "v2.31.0+chatload-sim",
    Era.B: "v2.34.0+chatload-sim",
    Era.C: "v2.37.0+chatload-sim",
    Era.D: "v2.38.0+chatload-sim",
}

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(version: str) -> tuple[int, int, int] | None:
    """``v2.37.1+abc1234`` -> (2, 37, 1); None for anything that is not a version."""
    match = _VERSION.match(version.strip())
    if not match:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def era_from_version(version: str) -> Era | None:
    """The era a buildinfo version implies, or None when only the stream can tell (A or B).

    Versions before 2.37 mount chats only under ``/api/experimental``; whether their frames
    are envelopes (A) or bare arrays (B) shows in the first frame (``era_from_frame``). A
    ``-devel`` build or an unparsable version also answers None.
    """
    parsed = parse_version(version)
    if parsed is None or "devel" in version:
        return None
    if parsed >= (2, 38, 0):
        return Era.D
    if parsed >= (2, 37, 0):
        return Era.C
    return None


def era_from_frame(frame: bytes | str) -> Era | None:
    """A for an envelope frame (starts with ``{``), B for a bare array, None if unclear."""
    for char in frame[:64] if isinstance(frame, str) else frame[:64].decode("latin-1"):
        if char == "{":
            return Era.A
        if char == "[":
            return Era.B
        if not char.isspace():
            return None
    return None
