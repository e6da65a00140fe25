"""Trace files: JSON Lines, gzip allowed; read with errors that name the line and the key.

A file is gzip when it starts with gzip's magic bytes, whatever its name; it is written gzip
when its name ends in ``.gz``. Writing is atomic (a temporary name, then a rename) and
repeatable: the same trace gives the same bytes (the gzip header carries no name or time),
so a seeded ``synth`` makes identical files.
"""

from __future__ import annotations

import gzip
import io
import os
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import orjson
from pydantic import BaseModel, ValidationError

from loadtest.config import explain
from loadtest.trace.model import (
    SCHEMA_VERSION,
    Trace,
    TraceChat,
    TraceHeader,
    TraceLines,
    check_chats,
)

GZIP_MAGIC = b"\x1f\x8b"


class TraceError(ValueError):
    """A trace that cannot be used; the message names the file, the line and the key."""


def _lines(handle: IO[bytes], where: str) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line) for each line; a damaged gzip stream names the line it
    broke on."""
    number = 0
    try:
        for number, raw in enumerate(handle, start=1):
            yield number, raw
    except EOFError:
        raise TraceError(
            f"{where}: line {number + 1}: the gzip stream ends early (the file was cut short)"
        ) from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise TraceError(f"{where}: line {number + 1}: the gzip data is damaged ({exc})") from None


def _parse(model: type[BaseModel], raw: bytes, where: str, number: int) -> BaseModel:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise TraceError(f"{where}: line {number}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise TraceError(
            f"{where}: line {number}: a line is a JSON object, not {type(data).__name__}"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise TraceError(str(explain(f"{where}: line {number}", exc))) from None


def read_trace(path: Path) -> Trace:
    """The trace in ``path``; ``TraceError`` for anything wrong with it, nothing half-read."""
    where = str(path)
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise TraceError(f"{where}: cannot read it ({exc.strerror})") from None
    with raw:
        gzipped = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        handle: IO[bytes] = gzip.GzipFile(fileobj=raw) if gzipped else raw  # type: ignore[assignment]
        return _read(handle, where)


def read_trace_bytes(data: bytes, where: str = "trace") -> Trace:
    """A trace from bytes (gzip or not), as ``read_trace``."""
    handle: IO[bytes] = io.BytesIO(data)
    if data[:2] == GZIP_MAGIC:
        handle = gzip.GzipFile(fileobj=handle)  # type: ignore[assignment]
    return _read(handle, where)


def _read(handle: IO[bytes], where: str) -> Trace:
    header: TraceHeader | None = None
    chats: list[TraceChat] = []
    for number, raw in _lines(handle, where):
        if not raw.strip():
            raise TraceError(f"{where}: line {number}: an empty line (one JSON object a line)")
        if header is None:
            header = _header(raw, where)
            continue
        chat = _parse(TraceChat, raw, where, number)
        assert isinstance(chat, TraceChat)
        chats.append(chat)
    if header is None:
        raise TraceError(f"{where}: line 1: empty, no header")
    problem = check_chats(header, chats)
    if problem is not None:
        raise TraceError(f"{where}: line {problem.line}: {problem.key}: {problem.message}")
    return Trace(header, chats)


def _header(raw: bytes, where: str) -> TraceHeader:
    try:
        version = orjson.loads(raw).get("schema_version")
    except (orjson.JSONDecodeError, AttributeError):
        version = None
    if isinstance(version, int) and version != SCHEMA_VERSION:
        raise TraceError(
            f"{where}: line 1: schema_version: {version} is not a version this chatload reads "
            f"(it reads {SCHEMA_VERSION})"
        )
    header = _parse(TraceHeader, raw, where, 1)
    assert isinstance(header, TraceHeader)
    return header


def encode(trace: Trace | TraceLines) -> bytes:
    """The trace as JSON Lines: the header, then one chat a line."""
    return b"".join(line + b"\n" for line in trace.encoded())


def write_trace(path: Path, trace: Trace | TraceLines) -> None:
    """Write ``trace`` to ``path`` whole or not at all, a line at a time (a big export is
    never all in memory twice); gzip when the name ends in ``.gz``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as raw:
            out: IO[bytes] = raw
            if path.name.endswith(".gz"):
                # No name and no time in the gzip header: the same trace, the same bytes.
                out = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)  # type: ignore[assignment]
            for line in trace.encoded():
                out.write(line)
                out.write(b"\n")
            if out is not raw:
                out.close()
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a trace is for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
