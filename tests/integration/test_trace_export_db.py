"""``chatload trace export --database-url`` against a real PostgreSQL holding Coder's tables.

The tables are Coder's (coderd/database/dump.sql: the enum types, ``chats`` and
``chat_messages`` with the columns the export reads, and some it must never read: titles,
owners, users), filled here with made-up rows that cover a sub-agent, a workspace, a tool
step, a hidden system message, an edited (soft-deleted) turn, content in the pre-000434
forms, and chats outside the window. The export must give exactly the expected trace, read
as a role that may see nothing but those two tables, and nothing said in the rows may
appear in the file.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from loadtest.cli import main
from loadtest.trace.build import opaque
from loadtest.trace.files import read_trace
from loadtest.trace.model import Trace, TraceChat, TraceHeader, TraceTurn
from tests.integration.pubsub_servers import postgres_url  # noqa: F401

SCHEMA = """
CREATE TYPE chat_message_role AS ENUM ('system', 'user', 'assistant', 'tool');
CREATE TYPE chat_message_visibility AS ENUM ('user', 'model', 'both');
CREATE TYPE chat_status AS ENUM ('waiting', 'pending', 'running', 'paused', 'completed', 'error');
CREATE TABLE users (
    id uuid PRIMARY KEY, email text NOT NULL, username text NOT NULL, name text NOT NULL
);
CREATE TABLE chats (
    id uuid DEFAULT gen_random_uuid() NOT NULL PRIMARY KEY,
    owner_id uuid NOT NULL REFERENCES users(id),
    workspace_id uuid,
    title text DEFAULT 'New Chat'::text NOT NULL,
    status chat_status DEFAULT 'waiting'::chat_status NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    parent_chat_id uuid REFERENCES chats(id) ON DELETE SET NULL,
    root_chat_id uuid REFERENCES chats(id) ON DELETE SET NULL,
    last_model_config_id uuid NOT NULL,
    archived boolean DEFAULT false NOT NULL
);
CREATE TABLE chat_messages (
    id bigserial PRIMARY KEY,
    chat_id uuid NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    model_config_id uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    role chat_message_role NOT NULL,
    content jsonb,
    visibility chat_message_visibility DEFAULT 'both'::chat_message_visibility NOT NULL,
    input_tokens bigint,
    output_tokens bigint,
    total_tokens bigint,
    compressed boolean DEFAULT false NOT NULL,
    created_by uuid,
    runtime_ms bigint,
    deleted boolean DEFAULT false NOT NULL
);
"""

USER = "0b6c5a8e-1111-4c0d-8c0d-000000000001"
MODEL = "0b6c5a8e-2222-4c0d-8c0d-000000000002"
WORKSPACE = "0b6c5a8e-3333-4c0d-8c0d-000000000003"
ROOT, CHILD, OTHER = (f"9e0f0000-0000-4000-8000-00000000000{i}" for i in (1, 2, 3))
BEFORE, BEFORE_CHILD, AT_END = (f"9e0f0000-0000-4000-8000-00000000000{i}" for i in (4, 5, 6))
SAID = (
    "SECRET",
    "alice_private",
    "Alice Hidden-Name",
    "alice@example.invalid",
    USER,
    MODEL,
    WORKSPACE,
    ROOT,
    CHILD,
    OTHER,
)


def text(*texts: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": t} for t in texts]


def call(name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool-call", "tool_call_id": f"call-{name}", "tool_name": name, "args": args}


def result(name: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "tool-result",
        "tool_call_id": f"call-{name}",
        "tool_name": name,
        "result": value,
    }


# (chat, time on 2026-12-08 or a full timestamp, role, visibility, content, output tokens, deleted)
MESSAGES: list[tuple[str, str, str, str, Any, int | None, bool]] = [
    (ROOT, "09:00:00", "system", "model", text("SECRET SYSTEM PROMPT"), None, False),
    (ROOT, "09:00:00.25", "user", "both", text("SECRET PROMPT ALPHA"), None, False),
    (ROOT, "09:00:00.3", "user", "model", text("SECRET INJECTED CONTEXT"), None, False),
    (
        ROOT,
        "09:00:03",
        "assistant",
        "both",
        [
            {"type": "reasoning", "text": "SECRET THINKING"},
            *text("SECRET ANSWER"),
            call("execute", {"command": "echo SECRET"}),
            call("spawn_agent", {"type": "general", "prompt": "SECRET CHILD PROMPT"}),
        ],
        40,
        False,
    ),
    (
        ROOT,
        "09:00:04",
        "tool",
        "both",
        [
            result("execute", {"output": "SECRET OUTPUT"}),
            result("spawn_agent", {"chat_id": CHILD, "title": "SECRET CHILD TITLE"}),
        ],
        None,
        False,
    ),
    (CHILD, "09:00:05", "user", "both", text("SECRET CHILD PROMPT"), None, False),
    (CHILD, "09:00:08", "assistant", "both", text("SECRET CHILD REPORT"), 7, False),
    (ROOT, "09:00:10.5", "assistant", "both", text("SECRET DONE"), 12, False),
    # An edited turn: Coder soft-deletes it, but its load happened.
    (ROOT, "09:01:00.5", "user", "both", text("SECRET FOLLOW", "UP"), None, True),
    (ROOT, "09:01:02.5", "assistant", "both", text("SECRET NO USAGE"), None, True),
    # Content as rows before migration 000434 held it: a bare string, one object.
    (OTHER, "09:30:00", "user", "both", "SECRET LEGACY", None, False),
    (OTHER, "09:30:02", "assistant", "both", {"type": "text", "text": "SECRET OBJ"}, 3, False),
    (BEFORE, "2026-12-07T23:00:00Z", "user", "both", text("SECRET YESTERDAY"), None, False),
    (BEFORE_CHILD, "09:10:00", "user", "both", text("SECRET LATE CHILD"), None, False),
    (AT_END, "10:00:00", "user", "both", text("SECRET AT THE END"), None, False),
]

# (id, created, parent, workspace, title)
CHATS = [
    (ROOT, "09:00:00", None, WORKSPACE, "SECRET TITLE ONE"),
    (CHILD, "09:00:05", ROOT, WORKSPACE, "SECRET CHILD TITLE"),
    (OTHER, "09:30:00", None, None, "SECRET TITLE TWO"),
    (BEFORE, "2026-12-07T23:00:00Z", None, None, "SECRET OLD"),
    (BEFORE_CHILD, "09:10:00", BEFORE, None, "SECRET OLD CHILD"),
    (AT_END, "10:00:00", None, None, "SECRET AT END"),
]


def moment(value: str) -> str:
    return value if "T" in value else f"2026-12-08T{value}Z"


@pytest.fixture(scope="module")
def coder_db(postgres_url: str) -> Iterator[str]:  # noqa: F811
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS coder_trace")
        admin.execute("DROP ROLE IF EXISTS trace_reader")  # its grants went with the database
        admin.execute("CREATE DATABASE coder_trace")
    url = postgres_url.rsplit("/", 1)[0] + "/coder_trace"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute(
            "INSERT INTO users VALUES (%s, 'alice@example.invalid', 'alice_private', "
            "'Alice Hidden-Name')",
            (USER,),
        )
        for chat_id, created, parent, workspace, title in CHATS:
            conn.execute(
                "INSERT INTO chats (id, owner_id, workspace_id, title, created_at, updated_at, "
                "parent_chat_id, root_chat_id, last_model_config_id) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (chat_id, USER, workspace, title, moment(created), moment(created), parent,
                 parent, MODEL),
            )  # fmt: skip
        for chat_id, at, role, visibility, content, tokens, deleted in MESSAGES:
            conn.execute(
                "INSERT INTO chat_messages (chat_id, created_at, role, visibility, content, "
                "output_tokens, created_by, model_config_id, deleted) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (chat_id, moment(at), role, visibility, orjson.dumps(content).decode(), tokens,
                 USER if role == "user" else None, MODEL, deleted),
            )  # fmt: skip
        # A role that may read those two tables and nothing else: the export needs no more.
        conn.execute("CREATE ROLE trace_reader LOGIN")
        conn.execute("GRANT SELECT ON chats, chat_messages TO trace_reader")
    yield url.replace("://chatload@", "://trace_reader@")


def expected() -> Trace:
    def turn(think: float, chars: int, steps: int, tools: dict[str, int], out: int | None, took: float | None) -> TraceTurn:  # fmt: skip
        return TraceTurn(
            think_s=think,
            prompt_chars=chars,
            steps=steps,
            tools=tools,
            subagents=tools.get("spawn_agent", 0),
            output_tokens=out,
            duration_s=took,
        )

    root = opaque(b"pepper", ROOT)
    return Trace(
        TraceHeader(
            schema_version=1,
            source="coder-postgres",
            started_at=datetime(2026, 12, 8, 9, 0, tzinfo=UTC),
            duration_s=3600.0,
            chats=3,
        ),
        [
            TraceChat(
                chat=root,
                start_s=0.0,
                parent=None,
                workspace=0,
                turns=[
                    turn(0.25, 19, 2, {"execute": 1, "spawn_agent": 1}, 52, 10.25),
                    turn(50.0, 15, 1, {}, None, 2.0),
                ],
            ),
            TraceChat(
                chat=opaque(b"pepper", CHILD),
                start_s=5.0,
                parent=root,
                workspace=0,
                turns=[turn(0.0, 19, 1, {}, 7, 3.0)],
            ),
            TraceChat(
                chat=opaque(b"pepper", OTHER),
                start_s=1800.0,
                parent=None,
                workspace=None,
                turns=[turn(0.0, 13, 1, {}, 3, 2.0)],
            ),
        ],
    )


def export(url: str, out: Path, *extra: str) -> int:
    return main(
        ["trace", "export", "--database-url", url, "--out", str(out), "--salt", "pepper", *extra]
    )


def test_the_export_gives_exactly_the_expected_trace(coder_db: str, tmp_path: Path) -> None:
    out = tmp_path / "trace.jsonl.gz"
    window = ("--since", "2026-12-08T09:00:00Z", "--until", "2026-12-08T10:00:00Z")
    assert export(coder_db, out, *window) == 0
    assert read_trace(out) == expected()


def test_nothing_said_in_the_rows_appears_in_the_file(coder_db: str, tmp_path: Path) -> None:
    out = tmp_path / "trace.jsonl"
    assert export(coder_db, out) == 0  # every chat, no window
    data = out.read_bytes()
    assert len(read_trace(out).chats) == 6  # yesterday's chat, its child, the last one too
    assert data.count(b"\n") == 7
    for secret in SAID:
        assert secret.encode() not in data, secret
        assert secret.lower().encode() not in data.lower(), secret
    assert b"New Chat" not in data


def test_a_database_without_coders_tables_exits_3(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert export(postgres_url, tmp_path / "t.jsonl.gz") == 3
    err = capsys.readouterr().err
    assert "is this Coder's database, at migration 000422" in err
    assert not (tmp_path / "t.jsonl.gz").exists()


def test_the_file_is_gzip_when_named_so(coder_db: str, tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl.gz"
    assert export(coder_db, out) == 0
    assert gzip.decompress(out.read_bytes()).startswith(b'{"schema_version":1')
