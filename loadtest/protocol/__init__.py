"""Coder's chat API as data: models, event types, eras and their paths. No I/O."""

from loadtest.protocol.eras import (
    PATHS,
    SIMULATED_VERSIONS,
    ChatPaths,
    Era,
    era_from_frame,
    era_from_version,
    parse_version,
)
from loadtest.protocol.models import TERMINAL_STATUSES, ChatStatus, ErrorKind, EventType

__all__ = [
    "PATHS",
    "SIMULATED_VERSIONS",
    "TERMINAL_STATUSES",
    "ChatPaths",
    "ChatStatus",
    "Era",
    "ErrorKind",
    "EventType",
    "era_from_frame",
    "era_from_version",
    "parse_version",
]
