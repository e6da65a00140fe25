"""The preflight against a real simulator: a ``-devel`` era-D build is told by its routes."""

from __future__ import annotations

import secrets

import pytest

from loadtest.client.preflight import inspect_target
from loadtest.protocol.eras import Era
from loadtest.runner.processes import SimProcess


#: Section 1.4: era C mounts the chats table at /api/experimental/chats too; the simulator's
#: chats routes (loadtest/sim/api_chats.py) do not yet, so a -devel C looks like D.
@pytest.mark.parametrize(
    ("era", "expected", "from_stream"),
    [
        ("d", Era.D, False),
        ("c", Era.C, False),
        ("b", Era.A, True),
    ],
)
def test_a_devel_build_is_told_by_its_routes(era: str, expected: Era, from_stream: bool) -> None:
    token = secrets.token_urlsafe(12)
    sim = SimProcess.start(era, token, {"build_version": "v2.39.0-devel+c0ffee"})
    try:
        target = inspect_target(sim.url, [token])
    finally:
        sim.stop()
    assert target.server_version == "v2.39.0-devel+c0ffee"
    assert (target.era, target.era_from_stream) == (expected, from_stream)
