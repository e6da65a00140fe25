"""``LocustRun`` is a library call: run twice in one process, each run reports only itself and
its counts equal what the simulator sent during it (the capacity search will rely on this)."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import textwrap

import pytest

from loadtest.runner.processes import SimProcess

SCRIPT = textwrap.dedent(
    """
    import locust  # gevent patching first, as 'chatload run' does
    import json, sys
    import httpx
    from loadtest.client.preflight import inspect_target
    from loadtest.locust.runtime import RunSettings
    from loadtest.runner.locust_run import LocustRun
    from loadtest.scenario import load_scenario

    url, token = sys.argv[1], sys.argv[2]
    scenario = load_scenario(None, {
        "load": {"users": 3, "run_time": 2, "stop_timeout": 20},
        "chat": {"turns": 2, "think_time": [0.01, 0.02]},
    })
    target = inspect_target(url, [token])
    out = []
    for _ in range(2):
        before = httpx.get(url + "/__sim/counts").json()["totals"]
        result = LocustRun(RunSettings.for_target(scenario, target), [token]).run()
        after = httpx.get(url + "/__sim/counts").json()["totals"]
        out.append({
            "complete": not result.incomplete_reasons,
            "ours": {k: result.measurement.count(k) for k in ("turns_completed", "frames", "events")},
            "sent": {k: after[k] - before[k] for k in ("turns_completed", "frames", "events")},
        })
    print(json.dumps(out))
    """
)


@pytest.mark.slow  # long: make test-all (make test stays under 10 minutes on 2 cores)
def test_two_runs_in_one_process_each_count_only_themselves() -> None:
    token = secrets.token_urlsafe(12)
    sim = SimProcess.start("d", token, {"ttft_ms": {"dist": "constant", "value": 20}})
    try:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, sim.url, token],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        runs = json.loads(done.stdout.strip().splitlines()[-1])
        assert len(runs) == 2
        for run in runs:
            assert run["complete"] and run["ours"]["turns_completed"] > 0
            assert run["ours"] == run["sent"], run
    finally:
        sim.stop()
