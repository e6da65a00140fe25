"""The recorder's own rules: error rows are capped."""

from __future__ import annotations

from loadtest.core.recorder import Recorder
from loadtest.core.turn import ErrorInfo


def test_error_rows_are_capped() -> None:
    recorder = Recorder()
    for i in range(500):
        recorder.error(ErrorInfo("create_chat", f"distinct message {i}", status_code=500), 0)
    assert len(recorder.errors) == 201
    assert sum(recorder.errors.values()) == 500
