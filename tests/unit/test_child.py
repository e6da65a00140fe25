"""``spawn``: a child in its own session that goes when its parent goes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from loadtest.child import spawn

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie (not reaped by its new parent yet) is gone too.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_child_has_its_own_session() -> None:
    child = spawn([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert os.getsid(child.pid) == child.pid != os.getsid(0)
    finally:
        child.terminate()
        child.wait(timeout=10)


def test_a_child_goes_when_its_parent_is_killed() -> None:
    parent_code = (
        "import sys, time\n"
        "from loadtest.child import spawn\n"
        "c = spawn([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(c.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    grandchild = int(parent.stdout.readline())
    try:
        assert not gone(grandchild)
        parent.kill()
        parent.wait(timeout=10)
        # Wait on the event (the child's end), bounded generously; no fixed sleep.
        deadline = time.monotonic() + 20
        while not gone(grandchild) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert gone(grandchild), "the child outlived its parent"
    finally:
        if not gone(grandchild):
            os.kill(grandchild, 9)
