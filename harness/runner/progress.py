"""A session that says what it is doing: the expected time first, then a line per phase.

At the start: ``tunebench: 8 candidates x 8 suites, expected about 27 min on this machine
(...)`` (:mod:`harness.runner.estimate`). When stdout is no terminal (a log file, CI), one
line per phase of each candidate, written as it happens and flushed::

    [lora] preparing (candidate 2 of 8)  [2:05 elapsed, ~25 min left]
    [lora] preparing: training 64 steps (SFTTrainer)  [2:06 elapsed, ~25 min left]
    [lora] training: step 32 of 64, loss 0.4761  [3:07 elapsed, ~24 min left]
    [lora] trained 64 steps in 126 s (181 tokens/s)  [4:12 elapsed, ~23 min left]
    [lora] accuracy suite: 2 tests, 500 items in 34 s  [4:46 elapsed, ~22 min left]
    [lora] done in 4:11: 9 passed, 3 skipped  [6:16 elapsed, ~20 min left]

The ``training: step`` line comes at most every :data:`HEARTBEAT_SECONDS` of a training; a
suite whose tests all skip gets no line (the ``done`` line counts them). On a terminal the
progress bars speak instead (tqdm, and the training bar of
:class:`harness.train.callbacks.TrainingProgress`).

The reporter is a pytest plugin (runtest hooks, as pytest's own terminal reporter) and a
tunebench plugin (``on_run_started``, ``on_candidate_ready``, ``on_metric_recorded``,
``on_run_finished``); training begin and progress arrive as records of the
``harness.train.progress`` logger. Lines are written through pytest's terminal reporter with
output capture suspended, so they land in order in a redirected file. Each test's report
carries what its lines need (``tunebench_prepare``, ``tunebench_items``): those attributes
survive pytest's report serialization, so under ``--executor=ray`` the driver writes the same
preparation and suite lines when it replays a cell's reports (after the cell ends, not live).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from harness.core import plugins
from harness.core.hookspecs import hookimpl
from harness.measure.judge import resolve_judge
from harness.runner.estimate import (
    PREPARE,
    CellPlan,
    Countdown,
    Estimate,
    Part,
    Setting,
    cached_candidate,
    describe,
    estimate,
    minutes,
    past_timings,
    reference_timings,
)
from harness.runner.matrix import Cell
from harness.runner.session import ExperimentSession
from harness.runner.time_budget import ADAPTIVE_SUITES

HEARTBEAT_SECONDS = 60.0
"""Least time between two ``training: step N of M`` lines of one training; the environment
variable ``TUNEBENCH_HEARTBEAT_SECONDS`` sets another."""
TRAINING_LOG = "harness.train.progress"


def suite_of(nodeid: str) -> str:
    """``suites/test_accuracy.py::test_x[lora]`` -> ``accuracy`` (as the store names it)."""
    return Path(nodeid.partition("::")[0]).stem.removeprefix("test_")


def clock(seconds: float) -> str:
    """``12:04``, ``1:02:09``."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def prepare_summary(info: dict[str, Any]) -> str:
    """``trained 64 steps in 126 s (181 tokens/s)``, ``reloaded from cache in 3 s``."""
    seconds = float(info.get("prepare_seconds") or 0.0)
    if info.get("cache_hit"):
        return f"reloaded from cache in {seconds:.0f} s"
    if "train_seconds" in info:
        steps = f" {info['train_steps']} steps" if info.get("train_steps") else ""
        rate = info.get("train_tokens_per_second")
        speed = f" ({rate:.0f} tokens/s)" if isinstance(rate, (int, float)) and rate else ""
        return f"trained{steps} in {float(info['train_seconds']):.0f} s{speed}"
    return f"ready in {seconds:.0f} s"


class _TrainingHandler(logging.Handler):
    def __init__(self, reporter: ProgressReporter) -> None:
        super().__init__(logging.INFO)
        self.reporter = reporter

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "training", None)
        if isinstance(event, dict):
            self.reporter.training_event(event)


def side_runs(experiment: ExperimentSession, cell: Cell) -> tuple[float, ...]:
    """The side runs the cell's selected tests prepare, as training size over the budget's:
    one per ``--label-noise`` share (every approach), one per ``--data-sizes`` size (training
    approaches)."""
    tests = experiment.cell_tests.get(cell.id, [])
    options, budget = experiment.options, experiment.budget.train_examples
    runs: list[float] = []
    if any(t.endswith("::test_noise_robustness") for t in tests):
        runs += [1.0 for share in set(options.label_noise) if share > 0]
    if (any(t.endswith("::test_data_efficiency") for t in tests) and options.data_sizes
            and experiment.trains(cell.approach)):
        runs += [size / budget if budget else 1.0 for size in set(options.data_sizes)]
    return tuple(runs)


class ProgressReporter:
    """Writes the estimate line and (``lines``) the phase lines of one pytest session."""

    def __init__(self, config: pytest.Config, experiment: ExperimentSession, *,
                 lines: bool | None = None, worker: bool = False) -> None:
        self.config, self.experiment, self.worker = config, experiment, worker
        self.lines = (not sys.stdout.isatty() if lines is None else lines) and not worker
        self.ray = config.getoption("executor", "local") == "ray"
        self.started = time.monotonic()
        self.estimate = Estimate({})
        self.countdown = Countdown({})
        self.tests_left: Counter[Part] = Counter()
        self.cell_tests_left: Counter[str] = Counter()
        self.cell_outcomes: dict[str, Counter[str]] = {}
        self.cell_order: list[str] = []
        self.plans: list[CellPlan] = []
        """The candidates the estimate counts (whether cached, which suites)."""
        self.running: tuple[Part, float] | None = None
        self.current_cell: str | None = None
        self.open_runs: dict[int, str] = {}
        self.prepared: dict[str, Any] | None = None
        self.items: int | None = None
        self.test_outcome: dict[str, str] = {}
        self.suite_seconds: Counter[Part] = Counter()
        self.suite_items: dict[Part, int] = {}
        self.suite_outcomes: dict[Part, Counter[str]] = {}
        self.heartbeat_at = 0.0
        self.heartbeat = float(os.environ.get("TUNEBENCH_HEARTBEAT_SECONDS", HEARTBEAT_SECONDS))
        self.handler = _TrainingHandler(self)
        self.log_level = logging.NOTSET

    # -- writing ---------------------------------------------------------------------------

    def status(self) -> str:
        elapsed = time.monotonic() - self.started
        running = None
        if self.running is not None:
            running = (self.running[0], time.monotonic() - self.running[1])
        left, unknown = self.countdown.remaining(running)
        budget = self.experiment.time_budget
        if budget is not None and left > budget.left():  # the budget ends the session first
            left, unknown = max(0.0, budget.left()), False
        if not self.countdown.expected or all(
                v is None for v in self.countdown.expected.values()):
            remaining = "time left unknown"
        else:
            work = " of cell work" if self.ray else ""
            amount = "<1" if left < 60 else f"{'' if unknown else '~'}{round(left / 60)}"
            remaining = f"{amount}{'+' if unknown else ''} min{work} left"
        return f"[{clock(elapsed)} elapsed, {remaining}]"

    def write(self, text: str, *, status: bool = True, end_of_group: bool = True) -> None:
        """One line, in order with pytest's output, flushed at once. Within a test
        (``end_of_group=False``) pytest's result letters continue on the next line (with
        ``-v``, pytest writes the test's name again before its result); after a group, pytest
        starts its next file line afresh."""
        line = f"{text}  {self.status()}" if status else text
        capture = self.config.pluginmanager.getplugin("capturemanager")
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        suspended = (capture.global_and_fixture_disabled() if capture is not None
                     else contextlib.nullcontext())
        with suspended:
            if reporter is None:
                print(line, flush=True)
            elif end_of_group or self.config.get_verbosity() > 0:
                if self.config.get_terminal_writer().width_of_current_line:
                    self.config.get_terminal_writer().line()  # after -q's result dots
                reporter.write_line(line)
                reporter.flush()
            else:
                writer = self.config.get_terminal_writer()
                if writer.width_of_current_line:
                    writer.line()
                writer.line(line)
                writer.flush()

    def phase(self, label: str | None, text: str, *, end_of_group: bool = False) -> None:
        if self.lines and label is not None:
            self.write(f"[{label}] {text}", end_of_group=end_of_group)

    # -- pytest hooks ----------------------------------------------------------------------

    def pytest_configure(self, config: pytest.Config) -> None:
        plugins.pm.register(self, "tunebench-progress")
        logger = logging.getLogger(TRAINING_LOG)
        self.log_level = logger.level
        logger.setLevel(logging.INFO)
        logger.addHandler(self.handler)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if plugins.pm.is_registered(self):
            plugins.pm.unregister(self)
        logger = logging.getLogger(TRAINING_LOG)
        logger.removeHandler(self.handler)
        logger.setLevel(self.log_level)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.started = time.monotonic()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        experiment = self.experiment
        suites: dict[str, list[str]] = {}
        for item in session.items:
            cell = experiment.test_cells.get(item.nodeid)
            if cell is None:
                continue
            suite = suite_of(item.nodeid)
            suites.setdefault(cell.id, [])
            if suite not in suites[cell.id]:
                suites[cell.id].append(suite)
            self.tests_left[(cell.id, suite)] += 1
            self.cell_tests_left[cell.id] += 1
        if self.worker or not suites or self.config.option.collectonly:
            return
        cells = {cell.id: cell for cell in experiment.cells if cell.id in suites}
        if experiment.options.resume:  # reused cells cost nothing
            cells = {i: c for i, c in cells.items()
                     if experiment.finished_run(experiment.cell_hash_of(c)) is None}
        self.cell_order = list(cells)
        self.plans = plans = [
            CellPlan(i, c.approach, tuple(suites[i]), cached_candidate(experiment, c),
                     side_runs(experiment, c))
            for i, c in cells.items()]
        setting = Setting(experiment.task_data().name, experiment.base_model.name,
                          experiment.budget.name, str(experiment.device),
                          experiment.precision.name)  # as RunRecord names them
        past = past_timings(experiment.options.results, setting, {p.approach for p in plans})
        self.estimate = estimate(plans, past, reference_timings(setting))
        self.countdown = Countdown(dict(self.estimate.parts))
        all_suites = {suite for names in suites.values() for suite in names}
        self.write(describe(self.estimate, cells=len(plans), suites=len(all_suites),
                            results=experiment.options.results), status=False)
        judge = resolve_judge(experiment)
        if judge is not None and "judge" in all_suites:
            self.write(judge.header_line(), status=False)

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        cell = self.experiment.test_cells.get(nodeid)
        self.current_cell = cell.id if cell is not None else None
        self.running = ((cell.id, suite_of(nodeid)), time.monotonic()) if cell else None
        self.prepared, self.items = None, None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
        report = yield
        if call.when == "setup" and self.prepared is not None:
            report.tunebench_prepare = self.prepared
        if call.when == "call" and self.items is not None:
            report.tunebench_items = self.items
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        cell = self.experiment.test_cells.get(report.nodeid)
        if cell is None or self.worker:
            return
        part = (cell.id, suite_of(report.nodeid))
        seconds = report.duration
        prepared = getattr(report, "tunebench_prepare", None)
        if prepared is not None:  # this setup prepared the candidate
            prepare = min(seconds, float(prepared.get("prepare_seconds") or 0.0))
            seconds -= prepare
            self.countdown.spend((cell.id, PREPARE), prepare, done=True)
            self.running = (part, time.monotonic())
            self.phase(cell.id, prepare_summary(prepared))
        elif report.when == "setup" and report.failed and (
                (cell.id, PREPARE) not in self.countdown.done):
            self.countdown.spend((cell.id, PREPARE), seconds, done=True, paced=False)
            self.phase(cell.id, f"preparing failed after {seconds:.0f} s: "
                                f"{_first_line(report)}")
            seconds = 0.0
        self.suite_seconds[part] += seconds
        items = getattr(report, "tunebench_items", None)
        if isinstance(items, int):
            self.suite_items[part] = max(self.suite_items.get(part, 0), items)
        if report.failed:
            self.test_outcome[report.nodeid] = "failed" if report.when == "call" else "error"
        elif report.skipped and self.test_outcome.get(report.nodeid, "passed") == "passed":
            self.test_outcome[report.nodeid] = "skipped"

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        cell = self.experiment.test_cells.get(nodeid)
        if cell is None or self.worker:
            return
        part = (cell.id, suite_of(nodeid))
        outcome = self.test_outcome.pop(nodeid, "passed")
        self.suite_outcomes.setdefault(part, Counter())[outcome] += 1
        self.cell_outcomes.setdefault(cell.id, Counter())[outcome] += 1
        self.tests_left[part] -= 1
        self.cell_tests_left[cell.id] -= 1
        self.running = None
        if self.tests_left[part] <= 0:
            self.suite_done(part)
        if self.cell_tests_left[cell.id] <= 0:
            spent = sum(s for (c, _), s in self.countdown.spent.items() if c == cell.id)
            counts = ", ".join(f"{n} {o}" for o, n in self.cell_outcomes[cell.id].items())
            self.phase(cell.id, f"done in {clock(spent)}: {counts}", end_of_group=True)

    def suite_done(self, part: Part) -> None:
        """All tests of one suite on one candidate ended: book its time, say so."""
        outcomes = self.suite_outcomes.pop(part)
        seconds = self.suite_seconds.pop(part, 0.0)
        items = self.suite_items.pop(part, None)
        tests = sum(outcomes.values())
        budget = self.experiment.time_budget
        adaptive = part[1] in ADAPTIVE_SUITES and self.experiment.adaptive_plan is not None
        stopped_early = adaptive or (budget is not None and part in budget.cut)
        self.countdown.spend(part, seconds, done=True, paced=not (
            outcomes["failed"] or outcomes["error"] or outcomes["skipped"] == tests
            or stopped_early))  # a part that did not run whole says nothing of the pace
        if outcomes["skipped"] == tests:
            return  # the suite does not apply to this candidate: the done line counts it
        text = f"{tests} test{'s' * (tests != 1)}"
        for outcome, word in (("failed", "FAILED"), ("error", "ERROR"), ("skipped", "skipped")):
            if outcomes[outcome]:
                text += f", {outcomes[outcome]} {word}"
        if items:
            text += f", {items} items"
        self.phase(part[0], f"{part[1]} suite: {text} in {seconds:.0f} s", end_of_group=True)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.worker or not self.countdown.expected:
            return
        known = any(seconds is not None for seconds in self.estimate.parts.values())
        guess = f" (expected {minutes(self.estimate.known_seconds)})" if known else ""
        terminalreporter.write_line(
            f"tunebench: session took {clock(time.monotonic() - self.started)}{guess}")

    # -- tunebench hooks -------------------------------------------------------------------

    @hookimpl
    def on_run_started(self, run_id: int, record: Any) -> None:
        cell = self.current_cell
        if self.open_runs:  # a run inside a test (--data-sizes, --label-noise): name its data
            size = record.config.get("train_examples")
            noise = record.config.get("label_noise")
            label = cell or record.approach
            if size is not None:
                label += f" @ {size} examples"
            if noise is not None:
                label += f" @ {noise * 100:g}% noisy labels"
            self.open_runs[run_id] = label
            self.phase(self.open_runs[run_id], "preparing")
            return
        self.open_runs[run_id] = cell or record.approach
        if cell is not None:
            self.running = ((cell, PREPARE), time.monotonic())
            position = (f" (candidate {self.cell_order.index(cell) + 1} of "
                        f"{len(self.cell_order)})" if cell in self.cell_order else "")
            self.phase(cell, f"preparing{position}")

    @hookimpl
    def on_candidate_ready(self, candidate: Any, run: Any) -> None:
        info = {key: candidate.info.get(key) for key in (
            "prepare_seconds", "train_seconds", "train_steps", "train_tokens",
            "train_tokens_per_second", "cache_hit") if key in candidate.info}
        if len(self.open_runs) > 1:  # a nested run: no report of its own carries it
            self.phase(self.open_runs.get(run.id), prepare_summary(info))
        else:
            self.prepared = info

    @hookimpl
    def on_metric_recorded(self, run: Any, metric: dict[str, Any]) -> None:
        n = metric.get("n")
        if isinstance(n, int) and metric.get("suite") != PREPARE:
            self.items = max(self.items or 0, n)

    @hookimpl
    def on_run_finished(self, run_id: int, status: str) -> None:
        self.open_runs.pop(run_id, None)

    def training_event(self, event: dict[str, Any]) -> None:
        """A record of :class:`harness.train.callbacks.TrainingProgress`."""
        label = list(self.open_runs.values())[-1] if self.open_runs else self.current_cell
        now = time.monotonic()
        if event.get("event") == "begin":
            self.heartbeat_at = now
            self.phase(label, f"preparing: training {event.get('steps')} steps "
                              f"({event.get('trainer')})")
        elif event.get("event") == "log" and now - self.heartbeat_at >= self.heartbeat:
            self.heartbeat_at = now
            loss = event.get("loss")
            shown = f", loss {loss:.4g}" if isinstance(loss, (int, float)) else ""
            self.phase(label, f"training: step {event.get('step')} of "
                              f"{event.get('steps')}{shown}")


def _first_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return (text.strip().splitlines() or ["?"])[0][:200]
