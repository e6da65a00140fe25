"""``resident_kb``: this process's resident memory, which grows by what it touches."""

from __future__ import annotations

import sys

import pytest

from loadtest.procstat import resident_kb

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")


def test_resident_memory_grows_by_what_the_process_touches() -> None:
    before = resident_kb()
    assert before > 0
    block = bytearray(64 << 20)  # 64 MiB, zeroed: every page touched
    block[::4096] = b"\x01" * len(block[::4096])
    grown = resident_kb() - before
    # Bounded relative to what was injected: at least half of it shows (the allocator may
    # have reused some pages already resident), and not wildly more.
    assert 32 << 10 <= grown <= 256 << 10, grown
    del block
