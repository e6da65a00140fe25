"""``chatload capacity``: the most load a deployment takes while every SLO holds.

Each step of the search (``core.search``) is a whole run through ``LocustRun``, in this
process, against one target (the embedded simulator, started once, or ``--host``): a warm-up
whose figures are dropped (``Measurement.since``), then the step time, ended early when the
target is clearly over-saturated, an SLO is broken beyond recovery (``core.saturation``) or
most turns fail. Each step
writes its own report; the search writes ``capacity.json``, ``capacity.html`` and
``summary.md``. Exit 0 when a capacity was found (or every SLO held up to the maximum), 1
when none was (nothing feasible, or the generator was the bottleneck), 2 bad usage, 3 the
target unreachable.
"""

# Locust patches the standard library with gevent when imported: first, before httpx/ssl.
import locust  # noqa: F401, I001

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtest.client.preflight import TargetInfo
from loadtest.client.server_metrics import MetricsScraper
from loadtest.core.histogram import Histogram
from loadtest.core.saturation import Saturation, beyond_recovery
from loadtest.core.search import CapacitySearch, SearchStep
from loadtest.core.server_delta import Scrape
from loadtest.core.slo import Slo, evaluate, per_turn_bounds
from loadtest.core.measurement import Measurement
from loadtest.locust import runtime
from loadtest.report.capacity import (
    CapacityReport,
    CapacityStep,
    verdict_line,
    write_capacity_files,
)
from loadtest.report.files import write_report_files
from loadtest.report.model import Report
from loadtest.report.build import build_report
from loadtest.report.server_metrics import build_server_metrics
from loadtest.runner.plan import (
    EXIT_FAILED,
    EXIT_INCOMPLETE,
    EXIT_PASSED,
    EXIT_USAGE,
    HOST_HELP,
    REPLAY_ACCOUNTS,
    UsageError,
    plan,
    replay_plan,
)
from loadtest.runner.run_command import add_server_metrics, run_info, server_metrics
from loadtest.runner.target import against_target
from loadtest.runner.flags import at_least, duration, positive
from loadtest.runner.locust_run import LocustRun, RunResult
from loadtest.trace.replay import ReplayPlan
from loadtest.scenario import Scenario, ScenarioError, load_scenario

#: A step whose ended turns are mostly failures, once this many ended, stops early.
FAILING_MIN_TURNS = 20


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = (
        "Find the most load a deployment takes while every SLO holds.\n\n"
        "Each step is a whole run at one load (users, or with --arrival-rate-from an arrival\n"
        "rate): a warm-up whose figures are dropped, then --step-time. Loads double from\n"
        "--users-from until an SLO breaks (or --users-max), then bisect to --precision; the\n"
        "two loads at the boundary run --repeats times, and the verdict is a monotone fit over\n"
        "every step, not one lucky run. A step stops early when the target is clearly\n"
        "over-saturated (turns in flight and TTFT both rising with confidence), an SLO is\n"
        "broken beyond recovery (more samples past a p95/p99/max/error-rate bound than its\n"
        "share of the step's projected total, however the rest goes) or most turns fail.\n"
        "A step where chatload itself was the bottleneck (CPU over 90 % or loop\n"
        "lag p99 over 10 ms) is no verdict: the search says so instead of a capacity.\n\n"
        "examples:\n"
        "  chatload capacity --slo 'time_to_first_output.p95 < 2s' --users-max 200\n"
        "  chatload capacity --host https://coder.example.com --setup setup.json \\\n"
        "      --slo 'time_to_first_output.p95 < 2s' --slo 'error_rate < 1%' --repeats 3\n\n"
        "writes <report-dir>/capacity.json, capacity.html, summary.md and steps/<load>/\n\n"
        "exit codes:\n"
        "  0  a capacity was found, or every SLO held up to the maximum\n"
        "  1  no load was feasible, or the load generator was the bottleneck\n"
        "  2  bad usage or configuration; nothing was run\n"
        "  3  the target is unreachable, refused the token, or has chats switched off\n"
        "  4  interrupted; what was found so far is written"
    )
    add = parser.add_argument
    add("--scenario", type=Path, help="scenario file (TOML): the chats each user runs")
    add("--host", action="append", help=HOST_HELP)
    add("--token", help="session token (CODER_SESSION_TOKEN is better), never logged")
    add("--setup", type=Path, help="a file written by 'chatload setup' (tokens, target)")
    add(
        "--slo",
        action="append",
        default=[],
        metavar="EXPR",
        help="an SLO every step must hold, repeatable (default: the scenario's [slo])",
    )
    add("--users-from", type=at_least(1), default=1, help="first step's users (1)")
    add("--users-max", type=at_least(1), default=64, help="most users tried (64)")
    add("--arrival-rate-from", type=positive, help="open loop: first step's turns/s")
    add("--arrival-rate-max", type=positive, help="open loop: most turns/s tried")
    add(
        "--trace",
        type=Path,
        metavar="FILE",
        help="replay a trace (chatload trace export/synth) at rising speed instead of the "
        "scenario's load: each step replays it --speedup times as fast (from its start, again "
        "and again for the whole step); the answer is the fastest replay every SLO holds at",
    )
    add("--speedup-from", type=positive, help="with --trace: first step's speedup (1)")
    add("--speedup-max", type=positive, help="with --trace: fastest speedup tried (16)")
    add("--window", metavar="START:END", help="with --trace: replay only this slice of it")
    add(
        "--step-time",
        type=duration(positive=True),
        default=60.0,
        help="measured time of each step, after its warm-up (60s)",
    )
    add(
        "--warmup",
        type=duration(positive=False),
        default=10.0,
        help="time at the start of each step whose figures are dropped (10s)",
    )
    add(
        "--repeats",
        type=at_least(1),
        default=1,
        help="runs of each boundary load (1; 3 is sturdier)",
    )
    add(
        "--precision",
        type=positive,
        default=10.0,
        metavar="PCT",
        help="stop bisecting when the gap is within PCT %% of the feasible load (10)",
    )
    add("--max-steps", type=at_least(1), default=30, help="at most this many steps (30)")
    add("--workers", type=at_least(0), help="Locust worker processes per step")
    add(
        "--era",
        choices=["auto", "a", "b", "c", "d"],
        help="protocol era of the target; with the simulator, the era it speaks",
    )
    add("--report-dir", type=Path, help="where to write (default reports/<time>-capacity)")
    add_server_metrics(parser)
    add("--quiet", action="store_true", help="only the final table")


def main(args: argparse.Namespace) -> int:
    for name in ("users", "spawn_rate", "arrival_rate", "run_time", "turns", "stop_timeout"):
        setattr(args, name, None)
    args.loop, args.speedup = False, 1.0  # each step sets its own
    try:
        replaying = replay_plan(args)
        scenario, slos, host, tokens = plan(args)
        if scenario.load.shape == "storm":
            raise UsageError("the storm shape ends when its chats do; capacity steps hold a load")
        search = _search(args)
    except (UsageError, ValueError) as exc:
        print(f"chatload capacity: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not slos:
        print(
            "chatload capacity: no SLO: give --slo (e.g. 'time_to_first_output.p95 < 2s') or "
            "the scenario's [slo] checks; capacity is the most load at which they hold",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return against_target(
        "capacity",
        scenario,
        host,
        tokens,
        lambda target, tokens: Capacity(
            args,
            scenario,
            slos,
            target,
            tokens,
            search,
            server_metrics(args, "capacity", None if host else target),
            replaying,
        ).run(),
        users=min(len(replaying.chats), REPLAY_ACCOUNTS) if replaying else args.users_max,
    )


def _search(args: argparse.Namespace) -> CapacitySearch:
    precision = args.precision / 100.0
    common: dict[str, Any] = {
        "precision": precision,
        "repeats": args.repeats,
        "max_steps": args.max_steps,
    }
    if args.trace is not None:
        low = args.speedup_from or 1.0
        high = args.speedup_max or 16.0
        if high < low:
            raise UsageError(f"--speedup-max {high:g} is below --speedup-from {low:g}")
        return CapacitySearch(low, high, integer=False, **common)
    if args.speedup_from is not None or args.speedup_max is not None:
        raise UsageError("--speedup-from and --speedup-max search a --trace replay: give --trace")
    if args.arrival_rate_from is not None or args.arrival_rate_max is not None:
        if args.arrival_rate_from is None or args.arrival_rate_max is None:
            raise UsageError("--arrival-rate-from and --arrival-rate-max go together")
        return CapacitySearch(
            args.arrival_rate_from, args.arrival_rate_max, integer=False, **common
        )
    if args.users_max < args.users_from:
        raise UsageError(f"--users-max {args.users_max} is below --users-from {args.users_from}")
    return CapacitySearch(args.users_from, args.users_max, integer=True, **common)


class StepMonitor:
    """A step's warm-up baseline, and whether it should stop early (``LocustRun``'s monitor):
    most turns failing, an SLO broken beyond recovery, or the target over-saturated."""

    def __init__(self, warmup_s: float, step_s: float, slos: list[Slo]) -> None:
        self.warmup_s = warmup_s
        self.step_s = step_s
        self.slos = slos
        self.baseline: Measurement | None = None
        self.baseline_at = 0.0
        #: Called as the warm-up ends (the step's server metrics are scraped then).
        self.on_baseline: Callable[[], None] | None = None
        self._saturation = Saturation()
        self._next_sample = 0.0
        self._last_ttft = Histogram()

    def __call__(self, elapsed: float, live: Callable[[], Measurement]) -> str | None:
        if self.baseline is None:
            if elapsed < self.warmup_s:
                return None
            self.baseline, self.baseline_at = live(), elapsed
            self._last_ttft = self.baseline.histogram("time_to_first_output")
            if self.on_baseline is not None:
                self.on_baseline()
            self._next_sample = elapsed + 1.0
            return None
        if elapsed < self._next_sample:
            return None
        self._next_sample = elapsed + 1.0
        measured = live()
        ended = _ended(measured) - _ended(self.baseline)
        failed = measured.count("turns_failed") - self.baseline.count("turns_failed")
        if ended >= FAILING_MIN_TURNS and failed * 2 > ended:
            return f"failing: {failed} of {ended} turns failed"
        lost = self._lost_slo(measured, (elapsed - self.baseline_at) / self.step_s)
        if lost is not None:
            return lost
        ttft = measured.histogram("time_to_first_output")
        second = ttft.minus(self._last_ttft)
        self._last_ttft = ttft
        p50 = second.value_at_percentile(50) / 1000 if second.count else None
        in_flight = measured.count("turns_started") - _ended(measured)
        if self._saturation.sample(in_flight, p50):
            return "over-saturated: turns in flight and TTFT both rising"
        return None

    def _lost_slo(self, measured: Measurement, done: float) -> str | None:
        """The first SLO this step can no longer meet, as the reason to stop."""
        assert self.baseline is not None
        for slo in self.slos:
            allowed = slo.breach_share
            if allowed is None:
                continue
            if slo.latency is not None:
                since = measured.histogram(slo.latency).minus(self.baseline.histogram(slo.latency))
                breaches, seen = since.count_above(int(slo.bound * 1000)), since.count
            else:  # error_rate: failed turns of those started
                breaches = measured.count("turns_failed") - self.baseline.count("turns_failed")
                seen = measured.count("turns_started") - self.baseline.count("turns_started")
            if beyond_recovery(breaches, seen, allowed, done):
                return f"SLO beyond recovery: {slo.expr} ({breaches} of {seen} samples break it)"
        return None


def _ended(measured: Measurement) -> int:
    return sum(measured.count(n) for n in ("turns_completed", "turns_failed", "turns_unfinished"))


class Capacity:
    """The search, run step by step against one target."""

    def __init__(
        self,
        args: argparse.Namespace,
        scenario: Scenario,
        slos: list[Slo],
        target: TargetInfo,
        tokens: list[str],
        search: CapacitySearch,
        scraper: MetricsScraper | None = None,
        replay: ReplayPlan | None = None,
    ) -> None:
        self.args = args
        self.scraper = scraper
        self.scenario = scenario
        self.slos = slos
        self.target = target
        self.tokens = tokens
        self.search = search
        self.open_loop = args.arrival_rate_from is not None
        #: ``--trace``: every step replays it (looping), the step's load its speedup.
        self.replay = replay
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.dir = Path(args.report_dir or Path("reports") / f"{stamp}-capacity")
        self.steps: list[CapacityStep] = []

    def run(self) -> int:
        started = time.monotonic()
        interrupted = False
        while (request := self.search.next()) is not None:
            load, repeat = request
            try:
                step = self._step(load, repeat)
            except KeyboardInterrupt:
                interrupted = True
                break
            if step is None:
                interrupted = True
                break
            self.search.record(step)
        report = self._report(time.monotonic() - started, interrupted)
        files = write_capacity_files(report, self.dir)
        self._print_final(report, files[0])
        if interrupted:
            return EXIT_INCOMPLETE
        return EXIT_PASSED if report.boundary in ("smooth", "cliff", "not_reached") else EXIT_FAILED

    def _scenario(self, load: float) -> Scenario:
        step_load: dict[str, Any] = {"run_time": self.args.warmup + self.args.step_time}
        if self.open_loop:
            step_load.update(mode="open", arrival_rate=load)
        else:
            step_load.update(mode="closed", users=int(load))
            # All users start within the warm-up, at least 5 a second.
            step_load["spawn_rate"] = max(5.0, load / max(1.0, self.args.warmup))
        if self.args.workers is not None:
            step_load["workers"] = self.args.workers
        try:
            return load_scenario(
                self.args.scenario, {"load": step_load, "chat": {}, "target": {}, "sim": {}}
            )
        except ScenarioError as exc:
            raise UsageError(str(exc)) from None

    def _step(self, load: float, repeat: int) -> SearchStep | None:
        """One step: run it, write its report, tell the search. None when interrupted."""
        scenario = self._scenario(load)
        settings = runtime.RunSettings.for_target(
            scenario,
            self.target,
            turn_slos=per_turn_bounds(self.slos),
            process_arrival_rate=load / max(1, scenario.load.workers) if self.open_loop else None,
            replay=self.replay.model_copy(update={"speedup": load, "loop": True})
            if self.replay is not None
            else None,
        )
        monitor = StepMonitor(self.args.warmup, self.args.step_time, self.slos)
        scraped = self._scrape_from(monitor)
        result = LocustRun(settings, self.tokens, monitor=monitor).run()
        if result.incomplete_reasons and any(
            r.startswith("interrupted") for r in result.incomplete_reasons
        ):
            return None
        report = self._step_report(scenario, result, monitor)
        if self.scraper is not None:
            # From the warm-up's end (or the step's start, if it never ended) to the step's
            # end: the same window as the step's own figures.
            report.server_metrics = build_server_metrics(
                self.scraper.shown,
                scraped[-1],
                self.scraper.scrape(),
                report.latency_ms["time_to_first_output"],
                report.latency_ms.get("tool_time"),
            )
        name = f"{load:g}" if repeat == 0 else f"{load:g}-repeat-{repeat}"
        step_dir = self.dir / "steps" / name
        write_report_files(report, step_dir, html=True, csv=False)
        broken = next((c.expr for c in report.slo.checks if not c.passed), None)
        if broken is None and result.stopped_early:
            broken = f"stopped early: {result.stopped_early}"
        figures = self._figures(report)
        step = SearchStep(
            load=load,
            repeat=repeat,
            passed=report.slo.passed,
            broken=broken,
            figures={k: v for k, v in figures.items() if v is not None},
            generator_bound=report.generator.bottleneck,
            stopped_early=result.stopped_early,
        )
        self.steps.append(
            CapacityStep(
                load=load,
                repeat=repeat,
                passed=step.passed,
                report=f"steps/{name}/report.json",
                figures=figures,
                stopped_early=result.stopped_early,
                generator_bottleneck=step.generator_bound,
                broken=broken,
            )
        )
        if not self.args.quiet:
            self._print_step(step, figures)
        return step

    def _scrape_from(self, monitor: StepMonitor) -> list[tuple[datetime, list[Scrape]]]:
        """The step's start scrape now, and its warm-up-end scrape appended when it comes."""
        if self.scraper is None:
            return []
        scraper = self.scraper
        scraped = [scraper.scrape()]
        monitor.on_baseline = lambda: scraped.append(scraper.scrape())
        return scraped

    def _step_report(self, scenario: Scenario, result: RunResult, monitor: StepMonitor) -> Report:
        measurement, duration = result.measurement, result.duration_s
        if monitor.baseline is not None:
            measurement = measurement.since(monitor.baseline)
            duration = max(1e-3, result.duration_s - monitor.baseline_at)
        report = build_report(
            measurement,
            run_info(scenario, self.target, result, duration),
            origin_epoch_s=result.started_at.timestamp(),
        )
        report.slo = evaluate(report.figure, self.slos)
        if result.stopped_early:
            # Stopped early, the step failed whatever its figures so far say.
            report.slo.passed = False
        return report

    def _figures(self, report: Report) -> dict[str, float | None]:
        """Each SLO's figure (a latency's p50 and p95 beside it), and the throughputs."""
        figures: dict[str, float | None] = {}
        for slo in self.slos:
            base, _, stat = slo.figure.partition(".")
            names = [slo.figure]
            if stat:
                names = [f"{base}.p50", f"{base}.p95", slo.figure]
            for name in names:
                figures[name] = report.figure(name)
        figures["turns_per_s"] = report.rates.turns_per_s
        figures["goodput_per_s"] = report.rates.goodput_per_s
        return figures

    def _report(self, duration: float, interrupted: bool) -> CapacityReport:
        outcome = self.search.outcome()
        because = outcome.stopped_because + (" (interrupted)" if interrupted else "")
        return CapacityReport(
            dimension="speedup"
            if self.replay is not None
            else "arrival_rate"
            if self.open_loop
            else "users",
            feasible_max=outcome.feasible_max,
            infeasible_min=outcome.infeasible_min,
            binding_slo=outcome.binding_slo,
            boundary=outcome.boundary,
            steps=self.steps,
            stopped_because=because,
            slos=[slo.expr for slo in self.slos],
            target=self.target.url,
            scenario=self.scenario.name,
            precision=self.args.precision / 100.0,
            repeats=self.args.repeats,
            duration_s=round(duration, 1),
            jump_over_trend=outcome.jump_over_trend,
        )

    def _print_step(self, step: SearchStep, figures: dict[str, float | None]) -> None:
        unit = "x speed" if self.replay is not None else "turns/s" if self.open_loop else "users"
        shown = ", ".join(f"{k} {v:.4g}" for k, v in figures.items() if v is not None)
        verdict = "PASS" if step.passed else f"FAIL ({step.broken or 'stopped'})"
        notes = [n for n in (step.stopped_early,) if n]
        if step.generator_bound:
            notes.append("GENERATOR BOTTLENECK")
        extra = f" [{'; '.join(notes)}]" if notes else ""
        print(
            f"step {len(self.steps):>2}: {step.load:g} {unit} (repeat {step.repeat}): "
            f"{verdict}; {shown}{extra}",
            flush=True,
        )

    def _print_final(self, report: CapacityReport, path: Path) -> None:
        print(f"\nchatload capacity: {verdict_line(report)}")
        print(f"  {len(report.steps)} steps in {report.duration_s:.0f} s; {report.stopped_because}")
        print(f"  {'load':>10} {'repeat':>6}  verdict")
        for step in sorted(report.steps, key=lambda s: (s.load, s.repeat)):
            mark = "PASS" if step.passed else "FAIL"
            print(f"  {step.load:>10g} {step.repeat:>6}  {mark} {step.broken or ''}")
        print(f"  report: {path.parent}/")
