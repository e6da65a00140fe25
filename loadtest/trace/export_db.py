"""``chatload trace export --database-url``: a trace from Coder's own PostgreSQL, read-only.

One query over ``chats`` and ``chat_messages`` (protocol §10.5), in a read-only transaction
through a server-side cursor, so a year of chats streams in pages without holding the
database or this process's memory. The text of a message never leaves the database: the
query hands over its length and its tool calls' names, computed in SQL.

Every column read has existed since the chats' first schema, Coder's migration 000422
(coderd/database/migrations/000422_chats.up.sql: ``chats.id, parent_chat_id, workspace_id,
created_at``; ``chat_messages.id, chat_id, created_at, role, content, visibility,
output_tokens``), and is still there in the newest schema read
(coderd/database/dump.sql @0001d501, coderd/database/queries/chats.sql @003cb0d6), so the
query fits every Coder that has Coder Agents (era A, February 2026, and every era since).
``role`` became the ``chat_message_role`` enum later and is read as text. ``content`` holds
a JSON array of parts since migration 000434; older rows may hold a bare string or one
object (chats.sql ``GetChatUserPromptsByChatID`` guards the same way), which the query
counts too. Columns added later (``runtime_ms`` in PR #23219, ``deleted`` in 000444) are
not read: a turn's duration comes from its messages' times, and a soft-deleted message (an
edited turn) was real load when it ran, so it stays in.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from loadtest.trace.build import Built, ExportError, Message, SourceChat, build_trace
from loadtest.trace.progress import ProgressBar

SOURCE = "coder-postgres"
#: Rows fetched from the server-side cursor at a time.
PAGE_ROWS = 5000
#: Visibility values that show a message to the user (``chat_message_visibility``:
#: user, model, both; migration 000422).
VISIBLE = frozenset({"user", "both"})

#: A sub-agent comes with its parent: the window selects user chats by their start, and
#: the chats they spawned follow them wherever those start. Rows come grouped by chat,
#: parents before their children, messages in id order (Coder's append order).
QUERY = """
SELECT
    c.id::text AS chat_id,
    c.parent_chat_id::text AS parent_id,
    c.workspace_id::text AS workspace_id,
    extract(epoch FROM c.created_at)::float8 AS chat_created_at,
    extract(epoch FROM COALESCE(p.created_at, c.created_at))::float8 AS root_created_at,
    m.id AS message_id,
    extract(epoch FROM m.created_at)::float8 AS message_created_at,
    m.role::text AS role,
    m.visibility::text AS visibility,
    m.output_tokens,
    COALESCE(parts.text_chars, 0)
        + CASE WHEN jsonb_typeof(m.content) = 'string' THEN length(m.content #>> '{}') ELSE 0 END
        AS text_chars,
    COALESCE(parts.tools, '{}'::text[]) AS tools
FROM chats AS c
LEFT JOIN chats AS p ON p.id = c.parent_chat_id
LEFT JOIN chat_messages AS m
    ON m.chat_id = c.id AND m.role::text IN ('user', 'assistant', 'tool')
LEFT JOIN LATERAL (
    SELECT
        sum(length(part ->> 'text')) FILTER (WHERE part ->> 'type' = 'text') AS text_chars,
        array_agg(COALESCE(part ->> 'tool_name', ''))
            FILTER (WHERE part ->> 'type' = 'tool-call') AS tools
    FROM jsonb_array_elements(
        CASE jsonb_typeof(m.content)
            WHEN 'array' THEN m.content
            WHEN 'object' THEN jsonb_build_array(m.content)
            ELSE '[]'::jsonb
        END
    ) AS part
) AS parts ON true
WHERE (%(since)s::timestamptz IS NULL OR COALESCE(p.created_at, c.created_at) >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR COALESCE(p.created_at, c.created_at) < %(until)s)
ORDER BY
    COALESCE(p.created_at, c.created_at),
    COALESCE(c.parent_chat_id, c.id),
    c.parent_chat_id IS NOT NULL,
    c.created_at,
    c.id,
    m.id
"""


def scrub(text: str, url: str) -> str:
    """``text`` without the URL's password, however a driver quoted it."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    for secret in {password, unquote(password) if password else None} - {None, ""}:
        assert secret is not None
        text = text.replace(secret, "***")
    return text


def _chats(
    rows: Iterator[tuple[Any, ...]], progress: ProgressBar, window: tuple[float, float] | None
) -> Iterator[SourceChat]:
    """Rows grouped into chats (they come grouped), the progress bar fed on the way; times
    come as seconds since the epoch (no datetime per row)."""
    chats = messages = 0
    chat: SourceChat | None = None
    for row in rows:
        (chat_id, parent, workspace, created, root_created, message_id, at, role, visibility,
         output_tokens, text_chars, tools) = row  # fmt: skip
        if chat is None or chat.id != chat_id:
            if chat is not None:
                yield chat
            chat = SourceChat(chat_id, created, parent, workspace)
            chats += 1
        if message_id is not None:
            chat.messages.append(
                Message(
                    at=at,
                    role=role,
                    visible=visibility in VISIBLE,
                    text_chars=int(text_chars),
                    tools=tuple(tools),
                    output_tokens=output_tokens,
                )
            )
            messages += 1
        if progress.due():
            fraction = None
            if window is not None:
                start, end = window
                fraction = (root_created - start) / (end - start) if end > start else 1.0
            reached = datetime.fromtimestamp(root_created, UTC)
            progress.update(
                fraction,
                f"{chats:,} chats, {messages:,} messages (reached {reached:%Y-%m-%d %H:%M} UTC)",
            )
    if chat is not None:
        yield chat


def export_database(
    url: str,
    *,
    since: datetime | None,
    until: datetime | None,
    salt: bytes,
    progress: ProgressBar,
) -> Built:
    """The trace of the chats started in [since, until) in the database at ``url``."""
    import psycopg
    from psycopg import errors

    # The bar runs over the window by chat start (rows come in start order); an open end
    # is now.
    end = until or datetime.now(UTC)
    window = (since.timestamp(), end.timestamp()) if since else None
    try:
        conn = psycopg.connect(url, connect_timeout=15, application_name="chatload trace export")
    except psycopg.Error as exc:
        raise ExportError(f"cannot connect to the database: {scrub(str(exc), url)}") from None
    try:
        # Nothing here writes; a read-only transaction makes sure of it.
        conn.read_only = True
        with conn.cursor(name="chatload_trace_export") as cursor:
            cursor.itersize = PAGE_ROWS
            cursor.execute(QUERY, {"since": since, "until": until})
            built = build_trace(
                _chats(iter(cursor), progress, window),
                source=SOURCE,
                salt=salt,
                since=since,
                until=until,
            )
        conn.rollback()
        return built
    except (errors.UndefinedTable, errors.UndefinedColumn, errors.UndefinedObject) as exc:
        raise ExportError(
            "the database has no Coder Agents tables as the export reads them "
            f"({scrub(str(exc).strip(), url)}): is this Coder's database, at migration "
            "000422 (the chats' first schema) or later?"
        ) from None
    except psycopg.Error as exc:
        raise ExportError(f"the export query failed: {scrub(str(exc).strip(), url)}") from None
    finally:
        progress.close()
        conn.close()
