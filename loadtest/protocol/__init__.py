"""Coder's chat API as data: models, event kinds, eras and their paths. No I/O."""

from loadtest.protocol.eras import (
    PATHS,
    SIMULATED_VERSIONS,
    ChatPaths,
    Era,
    era_from_frame,
    era_from_version,
    parse_version,
)
from loadtest.protocol.events import EVENT_KINDS, EventKind
from loadtest.protocol.models import TERMINAL_STATUSES, ChatStatus, ErrorKind

__all__ = [
    "EVENT_KINDS",
    "PATHS",
    "SIMULATED_VERSIONS",
    "TERMINAL_STATUSES",
    "ChatPaths",
    "ChatStatus",
    "Era",
    "ErrorKind",
    "EventKind",
    "era_from_frame",
    "era_from_version",
    "parse_version",
]
