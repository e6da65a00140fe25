"""This process's resident memory, read from ``/proc`` (Linux; 0 where there is none)."""

from __future__ import annotations

import os

_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024 if hasattr(os, "sysconf") else 4


def resident_kb() -> int:
    """Resident set size in KiB: ``/proc/self/statm``'s second field, in pages."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_KB
    except (OSError, IndexError, ValueError):
        return 0
