"""``chatload`` as a user runs it: a subprocess of this Python, its output captured."""

from __future__ import annotations

import subprocess
import sys


def chatload(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``chatload ARGS...``; never raises for its exit code."""
    return subprocess.run(
        [sys.executable, "-m", "loadtest.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
