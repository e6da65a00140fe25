"""Child processes that go when chatload goes: their own session, SIGTERM when the parent dies."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from typing import Any

_PR_SET_PDEATHSIG = 1


def _own_session() -> None:
    """In the child before exec (after any change of user): its own session, and SIGTERM
    when its parent dies, so a killed chatload or test leaves no server behind."""
    os.setsid()
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(command: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """A child process: own process group, gone when its parent is gone."""
    return subprocess.Popen(command, preexec_fn=_own_session, **kwargs)
