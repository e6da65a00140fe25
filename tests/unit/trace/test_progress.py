"""The export's progress bar: drawn in place on a terminal, silent elsewhere."""

from __future__ import annotations

import io

from loadtest.trace.progress import WIDTH, ProgressBar, bar


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_bar_moves_in_eighths_of_a_cell() -> None:
    assert bar(0.0) == f"[{' ' * WIDTH}]   0%"
    assert bar(1.0) == f"[{'█' * WIDTH}] 100%"
    assert bar(0.5).startswith("[" + "█" * (WIDTH // 2) + " ")
    assert bar(1 / (WIDTH * 8)) == "[▏" + " " * (WIDTH - 1) + "]   0%"
    assert bar(7.0) == bar(1.0)


def test_redraws_are_rate_limited_and_a_note_stays() -> None:
    out, clock = io.StringIO(), Clock()
    progress = ProgressBar("exporting", stream=out, enabled=True, clock=clock)
    progress.update(0.1, "1 chats")
    progress.update(0.2, "2 chats")  # too soon: not drawn
    clock.now = 1.0
    progress.update(0.3, "3 chats")
    progress.note("rate limited: waiting 5 s")
    progress.close()
    text = out.getvalue()
    assert "1 chats" in text and "2 chats" not in text and "3 chats" in text
    assert "\rrate limited: waiting 5 s\n" in text


def test_off_the_terminal_only_notes_are_written() -> None:
    out = io.StringIO()
    progress = ProgressBar("exporting", stream=out)  # a StringIO is no terminal
    progress.update(0.5, "half")
    progress.note("a note")
    progress.close()
    assert out.getvalue() == "a note\n"
