"""``--web``: Locust's web UI on the run, with a chatload tab of its live figures.

Locust's UI charts requests; what a chat load test is judged by (TTFT, the output kept,
events/s, stream integrity, retries by kind) is on a tab of its own, added the way Locust
documents for extending its UI: ``extended_tabs`` and ``extended_tables`` in the UI's
template arguments, and an ``extended_stats`` entry added to each ``/stats/requests`` answer
(the poll the UI makes every couple of seconds). The figures come from the same live
measurement as the progress lines and ``--prometheus`` (in a distributed run, the master's
merge). chatload drives the run; the UI watches it.
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from locust.env import Environment

from loadtest.core.figures import INTEGRITY_BREAKS
from loadtest.core.measurement import Measurement
from loadtest.core.recorder import RECONNECTS_PREFIX, RETRIES_PREFIX, TOOL_CALLS_PREFIX
from loadtest.runner.listen import check_free, parse_address

TAB = "chatload"
#: The table's columns: (key, title). One-word keys: the UI camel-cases keys.
COLUMNS = (("figure", "Figure"), ("value", "Value"), ("over", "Over"))
DEFAULT_ADDRESS = "127.0.0.1:8089"
#: Rates cover at least this long (the UI polls about every 2 s).
RATE_WINDOW_S = 2.0


def _ms(measured: Measurement, name: str, of: str = "turns") -> str:
    hist = measured.histogram(name)
    if not hist.count:
        return "n/a"
    p50, p95, p99 = (hist.value_at_percentile(p) / 1000 for p in (50, 95, 99))
    return f"p50 {p50:.0f} · p95 {p95:.0f} · p99 {p99:.0f} ms ({hist.count} {of})"


def _by_label(counts: dict[str, int]) -> str:
    return ", ".join(f"{label} {n}" for label, n in counts.items()) or "none"


class LiveTab:
    """The tab's rows, from live measurements: rates over the last few seconds, the rest so far."""

    def __init__(self, start_s: float) -> None:
        #: Earlier (time, measurement) pairs, oldest first: rates are taken against the newest
        #: one at least RATE_WINDOW_S old, so several viewers polling do not shrink them.
        self._seen: deque[tuple[float, Measurement]] = deque([(start_s, Measurement())])

    def rows(self, measured: Measurement, now_s: float) -> list[dict[str, str]]:
        seen = self._seen
        while len(seen) > 1 and now_s - seen[1][0] >= RATE_WINDOW_S:
            seen.popleft()
        then_s, then = seen[0]
        span = now_s - then_s
        seen.append((now_s, measured))

        def rate(name: str) -> str:
            if span <= 0:
                return "n/a"
            return f"{(measured.count(name) - then.count(name)) / span:,.1f}"

        last = f"last {span:.1f} s" if span > 0 else "—"
        integrity = {kind: measured.count(kind) for kind in INTEGRITY_BREAKS}
        rows = [
            ("streams open", f"{measured.level('open_streams')}", "now"),
            ("turns completed /s", rate("turns_completed"), last),
            ("events /s", rate("events"), last),
            ("time to first output", _ms(measured, "time_to_first_output"), "run so far"),
            ("time to first kept output", _ms(measured, "time_to_first_kept_output"), "run so far"),
            (
                "turns",
                f"{measured.count('turns_started')} started, {measured.count('turns_completed')} "
                f"completed, {measured.count('turns_failed')} failed",
                "run so far",
            ),
            (
                "integrity breaks",
                f"{sum(integrity.values())} of {measured.count('turns_checked')} turns checked"
                f" ({_by_label(integrity)})",
                "run so far",
            ),
            ("retries by kind", _by_label(measured.counts_under(RETRIES_PREFIX)), "run so far"),
            (
                "reconnects by cause",
                _by_label(measured.counts_under(RECONNECTS_PREFIX)),
                "run so far",
            ),
            ("decode errors", f"{measured.count('decode_errors')}", "run so far"),
        ]
        if measured.count("tool_calls") or measured.count("subagents_spawned"):
            rows += [
                (
                    "tool calls",
                    f"{measured.count('tool_calls')} ({measured.count('tool_errors')} with an error): "
                    + _by_label(measured.counts_under(TOOL_CALLS_PREFIX)),
                    "run so far",
                ),
                ("tool time", _ms(measured, "tool_time", "calls"), "run so far"),
                (
                    "step time to first output",
                    _ms(measured, "step_time_to_first_output", "steps"),
                    "run so far",
                ),
                (
                    "sub-agents",
                    f"{measured.count('subagents_spawned')} spawned, "
                    f"{measured.count('subagents_failed')} failed, "
                    f"{measured.count('subagents_followed')} followed; time to running "
                    + _ms(measured, "subagent_time_to_running", "children"),
                    "run so far",
                ),
            ]
        return [dict(zip((k for k, _ in COLUMNS), row, strict=True)) for row in rows]


class WebUi:
    """Locust's web UI on ``address`` for as long as the run lasts, with the chatload tab."""

    def __init__(self, address: str) -> None:
        self.host, self.port = parse_address("--web", address, DEFAULT_ADDRESS)
        self._ui: Any = None
        self._argv: list[str] = []

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}/?tab={TAB}"

    def check(self) -> None:
        """Refuse an address that cannot be served, before the run starts (OSError)."""
        check_free(self.host, self.port)

    def start(self, environment: Environment, live: Callable[[], Measurement]) -> None:
        from flask import Response, request

        # Locust's UI parses sys.argv with Locust's own parser on every page it renders
        # (locust/argument_parser.py, ui_extra_args_dict) and exits the process on what it
        # cannot parse: chatload's flags. Ours were parsed long ago; Locust sees none.
        self._argv = sys.argv
        sys.argv = sys.argv[:1]
        ui = environment.create_web_ui(self.host, self.port, delayed_start=True)
        ui.template_args["extended_tabs"] = [{"title": "chatload", "key": TAB}]
        ui.template_args["extended_tables"] = [
            {"key": TAB, "structure": [{"key": k, "title": t} for k, t in COLUMNS]}
        ]
        tab = LiveTab(time.monotonic())
        app = ui.app
        assert app is not None, "Locust's WebUI makes its Flask app when created"

        @app.after_request
        def extend(response: Response) -> Response:
            if request.path != "/stats/requests" or response.status_code != 200:
                return response
            data = response.get_json()
            data["extended_stats"] = [{"key": TAB, "data": tab.rows(live(), time.monotonic())}]
            response.set_data(json.dumps(data))
            return response

        ui.start()
        self._ui = ui

    def stop(self) -> None:
        if self._ui is not None:
            self._ui.stop()
            self._ui = None
            sys.argv = self._argv
