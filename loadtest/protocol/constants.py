"""Coder's limits, headers and exact strings, each written once beside the Coder file it came from.

The simulator speaks them and the client reads them, so neither can drift from the other. Paths
are coder/coder's (commit 004053e8 unless named; spec ``coder-chats-protocol.md`` §8 and §9 say
where each was read). A value nobody found in Coder's source says "guess". No I/O.
"""

from __future__ import annotations

from typing import Final

# ---------------------------------------------------------------- the chat stream

#: Events in one stream frame at most, the snapshot's chunks included (coderd/exp_chats.go
#: ``chatStreamBatchSize``).
BATCH_SIZE: Final = 256
#: The read limit Coder's websocket clients set (codersdk ``conn.SetReadLimit(1 << 22)``; the
#: relay dialer too, enterprise/coderd/x/chatd relay dial ``conn.SetReadLimit(1 << 22)``).
READ_LIMIT_BYTES: Final = 1 << 22

# ---------------------------------------------------------------- authentication

#: The session token's header and cookie (codersdk ``SessionTokenHeader``,
#: ``SessionTokenCookie``).
SESSION_TOKEN_HEADER: Final = "Coder-Session-Token"
SESSION_TOKEN_COOKIE: Final = "coder_session_token"

# ---------------------------------------------------------------- the message queue

#: Messages a busy chat queues at most (chatd ``MaxQueueSize``, spec §4.1).
MAX_QUEUE: Final = 20
#: The 429 beyond it, all eras (coderd/exp_chats.go, spec §8.1): (message, detail template).
QUEUE_FULL: Final = ("Message queue is full.", "Maximum {limit} messages can be queued.")

# ---------------------------------------------------------------- chat handler errors
# coderd/exp_chats.go (spec §8.1): the ``message`` of each ``codersdk.Response``.

ARCHIVED_POST: Final = "Cannot send messages to an archived chat."
MODEL_NOT_FOUND: Final = "Invalid model_config_id: model config not found or disabled."
CONTENT_REQUIRED: Final = ("Content is required.", "Content cannot be empty.")
BUSY_BEHAVIOR: Final = ("Invalid busy_behavior value.", 'Must be "queue" or "interrupt".')
NO_ORG_MODEL: Final = (
    "No chat model is available in this organization.",
    "Ask an organization administrator to configure and enable a chat model.",
)
ARCHIVE_ACTIVE: Final = (
    "Cannot archive an active chat. Interrupt or wait for the chat to finish first."
)
ALREADY_ARCHIVED: Final = "Chat is already archived."
ALREADY_UNARCHIVED: Final = "Chat is already not archived."
TITLE_EMPTY: Final = "Title cannot be empty."
TITLE_TOO_LONG: Final = "Title must be at most 200 characters."
NOT_INTERRUPTIBLE: Final = "Chat is not in an interruptible state."
INTERRUPT_ARCHIVED: Final = "Cannot interrupt an archived chat."
NOTHING_TO_PROMOTE: Final = "Chat has no queued messages to promote."
PROMOTE_ARCHIVED: Final = "Cannot promote queued messages in an archived chat."
BAD_AFTER_ID: Final = "Invalid after_id parameter."
#: The shared 409 of a mutation the chat's state refuses (coderd/exp_chats.go
#: ``writeChatInvalidState``); ``POST /tool-results`` answers it when the chat is not in
#: ``requires_action`` (spec §9.3; the older "Chat is not waiting for tool results." is gone).
INVALID_STATE: Final = "Chat is in an invalid state."

# ---------------------------------------------------------------- dynamic tools (era D)
# coderd/x/chatd/chatstate/toolresults.go ``ValidateToolResults`` decides which (per result in
# order: a duplicate id, then output that is not JSON; then a pending call left unanswered,
# then an id not pending); chatd.go ``translateToolResultValidationError`` words it, as 400
# (message, detail template with the call id quoted as Go's %q does).

TOOL_RESULT_DUPLICATE: Final = (
    "Duplicate tool_call_id in results.",
    "Duplicate tool call ID {id}.",
)
TOOL_RESULT_INVALID_JSON: Final = (
    "Tool result output must be valid JSON.",
    "Output for tool call {id} is not valid JSON.",
)
TOOL_RESULT_MISSING: Final = ("Missing tool result.", "Missing result for tool call {id}.")
TOOL_RESULT_UNEXPECTED: Final = ("Unexpected tool result.", "No pending tool call with ID {id}.")
#: How long ``requires_action`` waits for the client before ``CancelRequiresAction`` commits
#: cancellation results and the turn runs on (coderd/x/chatd/ARCHITECTURE.md:
#: ``requires_action_deadline_at``, "a timestamp 5 minutes in the future").
REQUIRES_ACTION_TIMEOUT_S: Final = 300.0
#: The result each unanswered call then gets: one ``tool`` message per call, its part a
#: ``tool-result`` whose ``result`` is this JSON string, with ``is_error`` true
#: (coderd/x/chatd/chatstate: ``CancelRequiresAction``'s default reason, committed by
#: ``synthesizePendingToolCancellations``).
TOOL_CALL_CANCELLED: Final = "Tool execution timed out"
#: The error a workspace tool (``execute`` …) gives the model in a chat without a workspace;
#: the turn goes on (coderd/x/chatd/chattool, ``ErrChatHasNoWorkspace``: "Their messages are
#: shown to the model"). The result's shape, a JSON string with ``is_error`` true, is a guess.
NO_WORKSPACE: Final = (
    "this tool requires a workspace and this chat does not have one. Use the create_workspace "
    "tool to create one"
)
#: How long ``wait_agent`` waits for the child when the call names no ``timeout_seconds``
#: (coderd/x/chatd/subagent.go: 5 minutes, spec §10.3).
WAIT_AGENT_TIMEOUT_S: Final = 300.0

# ---------------------------------------------------------------- the relay between replicas
# coderd/x/chatd/streamparts.go (the parts endpoint), streamparts_transport.go (its JSON
# transport) and the enterprise relay dialer (``dialRelayParts``): spec §9.4.

#: What a relay request says of itself: the dialing replica's id.
RELAY_SOURCE_HEADER: Final = "X-Coder-Relay-Source-Replica"
#: The path the dialer asks for, whatever the era's base path: the enterprise dialer's test
#: (enterprise/coderd/x/chatd ``TestStreamPartsDialerDialsPartsEndpoint``) requires
#: ``/api/experimental/chats/{chat}/stream/parts``.
RELAY_PATH: Final = "/api/experimental/chats/{chat}/stream/parts"
#: The control message's fields: the dialer selects an episode with ``{"history_version": N,
#: "generation_attempt": M}`` (``streamPartsControl``), again whenever it switches.
RELAY_CONTROL_FIELDS: Final = ("history_version", "generation_attempt")


def go_quote(text: str) -> str:
    """``text`` as Go's ``%q`` writes a plain string (quotes and backslashes escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
