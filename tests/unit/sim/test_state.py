"""The simulated deployment refuses settings its era cannot have."""

from __future__ import annotations

import pytest

from loadtest.protocol.eras import Era
from loadtest.protocol.models import ErrorKind
from loadtest.sim.config import SimConfig
from loadtest.sim.errors import ApiError
from loadtest.sim.state import Sim


def test_era_d_has_no_startup_timeout_but_older_eras_do() -> None:
    startup = SimConfig(error_kind=ErrorKind.STARTUP_TIMEOUT)
    with pytest.raises(ApiError) as refused:
        Sim(Era.D, startup, None)
    assert refused.value.status == 400
    sim = Sim(Era.D, SimConfig(), None)
    with pytest.raises(ApiError):
        sim.reconfigure(startup)
    assert sim.config.error_kind == ErrorKind.OVERLOADED
    assert Sim(Era.A, startup, None).config.error_kind == ErrorKind.STARTUP_TIMEOUT
