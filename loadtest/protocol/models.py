"""Coder's chat API as pydantic models, one set for every era.

Fields that only some eras send are optional; unknown fields are kept (``extra="allow"``), so
a newer server never breaks the tool and the simulator can round-trip what it is given. The
hot stream path does not use these models (see ``loadtest.decode``); they validate REST
bodies, build the simulator's output, and back strict checks in tests.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    """Base: keep unknown fields, drop unset optionals when serialising (Go's omitempty)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def wire(self) -> dict[str, Any]:
        """The JSON-ready dict a Coder server would send: unset optional fields omitted."""
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)


class ChatStatus(StrEnum):
    WAITING = "waiting"
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    ERROR = "error"
    REQUIRES_ACTION = "requires_action"
    INTERRUPTING = "interrupting"


#: Statuses that end a turn (``docs/metrics.md``: "A turn").
TERMINAL_STATUSES: Final[frozenset[str]] = frozenset(
    {
        ChatStatus.WAITING,
        ChatStatus.ERROR,
        ChatStatus.REQUIRES_ACTION,
        ChatStatus.COMPLETED,
        ChatStatus.PAUSED,
    }
)


class ErrorKind(StrEnum):
    GENERIC = "generic"
    OVERLOADED = "overloaded"
    RATE_LIMIT = "rate_limit"
    TIMEOUT = "timeout"
    STARTUP_TIMEOUT = "startup_timeout"
    STREAM_SILENCE_TIMEOUT = "stream_silence_timeout"
    AUTH = "auth"
    CONFIG = "config"
    USAGE_LIMIT = "usage_limit"
    MISSING_KEY = "missing_key"
    PROVIDER_DISABLED = "provider_disabled"
    CONTENT_FILTER = "content_filter"
    HOOK_DISPATCH_FAILED = "hook_dispatch_failed"
    HOOK_DENIED = "hook_denied"


# ---------------------------------------------------------------- errors (HTTP and stream)


class ValidationError(Model):
    field: str
    detail: str


class Response(Model):
    """``codersdk.Response``: the body of every HTTP error, and era A's ``error`` envelope."""

    message: str = ""
    detail: str | None = None
    validations: list[ValidationError] | None = None

    def text(self) -> str:
        """``message: detail`` as the seed's ``formatChatStreamResponseError`` joins them."""
        message, detail = self.message.strip(), (self.detail or "").strip()
        if message and detail:
            return f"{message}: {detail}"
        return message or detail or "chat stream returned an error"


class ChatError(Model):
    """The stream's error payload in all three forms, and ``Chat.last_error`` from May 2026.

    Seed: ``{message}``; March: adds ``kind``, ``provider``, ``retryable``, ``status_code``;
    May (#24919): adds ``detail``.
    """

    message: str = ""
    detail: str | None = None
    kind: str | None = None
    provider: str | None = None
    retryable: bool | None = None
    status_code: int | None = None


# The seed calls it ChatStreamError; the March form is the same shape without ``detail``.
ChatStreamError = ChatError


# ---------------------------------------------------------------- messages


class ChatMessagePart(Model):
    type: str
    text: str | None = None
    signature: str | None = None
    tool_call_id: str | None = None
    tool_name: str | None = None
    args: Any = None
    args_delta: str | None = None
    result: Any = None
    result_delta: str | None = None
    result_reset: bool | None = None
    is_error: bool | None = None
    is_media: bool | None = None
    source_id: str | None = None
    url: str | None = None
    title: str | None = None
    media_type: str | None = None
    name: str | None = None
    data: str | None = None
    file_id: str | None = None
    provider_executed: bool | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None


class ChatMessageUsage(Model):
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_creation_tokens: int | None = None
    cache_read_tokens: int | None = None
    context_limit: int | None = None


class ChatMessage(Model):
    """``codersdk.ChatMessage`` (spec §9.1): no ``revision`` and no ``queued_message_id`` on
    the wire (the database has a revision; a client cannot see it)."""

    id: int
    chat_id: str
    created_by: str | None = None
    model_config_id: str | None = None
    created_at: datetime
    role: Literal["system", "user", "assistant", "tool"] | str
    content: list[ChatMessagePart] | None = None
    usage: ChatMessageUsage | None = None


class ChatQueuedMessage(Model):
    id: int
    chat_id: str
    model_config_id: str | None = None
    content: list[ChatMessagePart] = Field(default_factory=list)
    created_at: datetime


class ChatInputPart(Model):
    #: Go's zero value when absent: the server then refuses the part by its type.
    type: Literal["text", "file", "file-reference"] | str = ""
    text: str | None = None
    file_id: str | None = None
    file_name: str | None = None
    start_line: int | None = None
    end_line: int | None = None
    content: str | None = None


# ---------------------------------------------------------------- chats


class Chat(Model):
    id: str
    owner_id: str
    organization_id: str | None = None
    workspace_id: str | None = None
    parent_chat_id: str | None = None
    root_chat_id: str | None = None
    last_model_config_id: str | None = None
    title: str = ""
    status: str
    #: Era A-C: a string or null (always present); era D: a ChatError object, omitted if none.
    last_error: ChatError | str | None = None
    created_at: datetime
    updated_at: datetime
    archived: bool = False
    pin_order: int | None = None
    labels: dict[str, str] | None = None
    has_unread: bool | None = None
    queued_for_capacity: bool | None = None

    def last_error_info(self) -> ChatError | None:
        """``last_error`` in its structured form; a legacy string becomes kind ``generic``."""
        if self.last_error is None or isinstance(self.last_error, ChatError):
            return self.last_error
        return ChatError(message=self.last_error, kind=ErrorKind.GENERIC)


#: Watch event kinds (sections 3.8 and 8.5); a client counts unknown ones too.
WATCH_KINDS: Final = (
    "status_change",
    "summary_change",
    "chat_summary_change",
    "title_change",
    "created",
    "deleted",
    "diff_status_change",
    "action_required",
    "context_dirty",
    "capacity_change",
)


class ChatWithMessages(Model):
    """Era A's ``GET /chats/{id}``."""

    chat: Chat
    messages: list[ChatMessage] = Field(default_factory=list)
    queued_messages: list[ChatQueuedMessage] = Field(default_factory=list)


class ChatMessagesResponse(Model):
    messages: list[ChatMessage] = Field(default_factory=list)
    queued_messages: list[ChatQueuedMessage] = Field(default_factory=list)
    has_more: bool = False


class CreateChatRequest(Model):
    #: A JSON null or no key decodes to Go's nil slice: the handler answers that it is required.
    content: list[ChatInputPart] | None = None
    organization_id: str | None = None
    workspace_id: str | None = None
    model_config_id: str | None = None
    system_prompt: str | None = None
    labels: dict[str, str] | None = None
    client_type: str | None = None


class CreateChatMessageRequest(Model):
    #: A JSON null or no key decodes to Go's nil slice: the handler answers that it is required.
    content: list[ChatInputPart] | None = None
    model_config_id: str | None = None
    busy_behavior: Literal["queue", "interrupt"] | None = None


class CreateChatMessageResponse(Model):
    message: ChatMessage | None = None
    queued_message: ChatQueuedMessage | None = None
    queued: bool = False
    messages: list[ChatMessage] | None = None
    warnings: list[str] | None = None


class EditChatMessageRequest(Model):
    #: A JSON null or no key decodes to Go's nil slice: the handler answers that it is required.
    content: list[ChatInputPart] | None = None
    model_config_id: str | None = None


class EditChatMessageResponse(Model):
    """Era C/D; era A/B answer a bare ChatMessage."""

    message: ChatMessage
    messages: list[ChatMessage] | None = None
    deleted_message_ids: list[int] | None = None
    warnings: list[str] | None = None


class UpdateChatRequest(Model):
    title: str | None = None
    archived: bool | None = None
    pin_order: int | None = None
    labels: dict[str, str] | None = None


# ---------------------------------------------------------------- models and providers


class ChatModel(Model):
    id: str
    provider: str
    model: str
    display_name: str = ""


class ChatModelProvider(Model):
    provider: str
    available: bool
    unavailable_reason: str | None = None
    models: list[ChatModel] = Field(default_factory=list)


class ChatModelsResponse(Model):
    providers: list[ChatModelProvider] = Field(default_factory=list)


class ChatProviderConfig(Model):
    id: str
    provider: str
    display_name: str = ""
    enabled: bool = True
    has_api_key: bool = False
    base_url: str | None = None
    source: Literal["database", "env_preset", "supported"] | str = "database"
    created_at: datetime | None = None
    updated_at: datetime | None = None


class CreateChatProviderConfigRequest(Model):
    #: Go's zero value when absent: the server refuses the provider by name.
    provider: str = ""
    display_name: str | None = None
    api_key: str | None = None
    base_url: str | None = None
    enabled: bool | None = None


class UpdateChatProviderConfigRequest(Model):
    display_name: str | None = None
    api_key: str | None = None
    base_url: str | None = None
    enabled: bool | None = None


class ChatModelConfig(Model):
    id: str
    provider: str
    model: str
    display_name: str = ""
    enabled: bool = True
    is_default: bool = False
    context_limit: int = 0
    compression_threshold: int = 70
    model_config_: dict[str, Any] | None = Field(default=None, alias="model_config")
    created_at: datetime | None = None
    updated_at: datetime | None = None


class CreateChatModelConfigRequest(Model):
    provider: str = ""
    model: str = ""
    display_name: str | None = None
    enabled: bool | None = None
    is_default: bool | None = None
    context_limit: int | None = None
    compression_threshold: int | None = None
    model_config_: dict[str, Any] | None = Field(default=None, alias="model_config")


# ---------------------------------------------------------------- the stream


class ChatStreamMessagePart(Model):
    role: str | None = None
    part: ChatMessagePart
    history_version: int | None = None
    generation_attempt: int | None = None
    seq: int | None = None


class ChatStreamStatus(Model):
    status: str


class ChatStreamRetry(Model):
    attempt: int
    delay_ms: int
    error: str = ""
    retrying_at: datetime | None = None
    kind: str | None = None
    provider: str | None = None
    status_code: int | None = None


class ChatActionRequiredToolCall(Model):
    tool_call_id: str
    tool_name: str
    args: str = ""


class ChatStreamActionRequired(Model):
    tool_calls: list[ChatActionRequiredToolCall] = Field(default_factory=list)


class ToolResult(Model):
    """One answer to an ``action_required`` tool call (codersdk ``ToolResult``, spec §9.3):
    ``output`` is raw JSON (a missing one is not valid JSON: 400), ``is_error`` says the
    client's tool failed."""

    tool_call_id: str
    output: Any = None
    is_error: bool = False


class SubmitToolResultsRequest(Model):
    """``POST /chats/{chat}/tool-results`` (era D; 204 with no body; 409 when the chat is not
    in ``requires_action``; 400 for a result that does not answer its pending calls)."""

    results: list[ToolResult] = Field(default_factory=list)


class ChatStreamEvent(Model):
    """One event of a stream frame. ``type`` is a plain string: unknown types are kept."""

    type: str
    chat_id: str | None = None
    message: ChatMessage | None = None
    message_part: ChatStreamMessagePart | None = None
    status: ChatStreamStatus | None = None
    #: A bare string (legacy) or any of the three object forms.
    error: ChatError | str | None = None
    retry: ChatStreamRetry | None = None
    queued_messages: list[ChatQueuedMessage] | None = None
    action_required: ChatStreamActionRequired | None = None


class ChatWatchEvent(Model):
    """One ``/chats/watch`` event (section 3.8): era A wraps it in ``{"type":"data"}``; B+
    sends it bare, one per frame. ``tool_calls`` only from older versions: today's
    ``action_required`` watch event has none (spec §9.3)."""

    kind: str
    chat: Chat
    tool_calls: list[ChatActionRequiredToolCall] | None = None


# ---------------------------------------------------------------- users and bootstrap


class BuildInfoResponse(Model):
    version: str
    external_url: str = ""
    dashboard_url: str = ""
    telemetry: bool = False
    workspace_proxy: bool = False
    agent_api_version: str = ""
    provisioner_api_version: str = ""
    upgrade_message: str = ""
    deployment_id: str = ""


class CreateFirstUserRequest(Model):
    # Go's zero values when absent: the server's ``validate:"required"`` then names them.
    email: str = ""
    username: str = ""
    name: str | None = None
    password: str = ""
    trial: bool = False


class CreateFirstUserResponse(Model):
    user_id: str
    organization_id: str


class LoginWithPasswordRequest(Model):
    email: str = ""
    password: str = ""


class LoginWithPasswordResponse(Model):
    session_token: str


class GenerateAPIKeyResponse(Model):
    key: str
