"""The pytest side of ``--time-budget``: asks :func:`harness.runner.time_budget.share` before
each part of the session, skips what does not fit, times adaptive tests, and ends with what was
decided. Registered by the runner's plugin after the progress reporter, whose estimate and
pace it reads."""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest

from harness.runner.estimate import PREPARE, Part, minutes
from harness.runner.progress import ProgressReporter, clock, suite_of
from harness.runner.session import ExperimentSession
from harness.runner.time_budget import (
    ADAPTIVE_SUITES,
    TimeBudget,
    decision_lines,
    share,
    training_line,
    unmeasured_lines,
)


class BudgetKeeper:
    """Keeps one session within its ``--time-budget`` (module docstring)."""

    def __init__(self, experiment: ExperimentSession, progress: ProgressReporter) -> None:
        assert experiment.time_budget is not None
        self.experiment, self.progress = experiment, progress
        self.budget: TimeBudget = experiment.time_budget
        self.order: list[Part] = []
        """Every part of the session in the order it runs, each cell's preparation first."""
        self.part_deadline: dict[Part, float] = {}
        self.refused = False
        """The training alone does not fit: the session ends before it starts."""

    # -- planning --------------------------------------------------------------------------

    def expected(self) -> dict[Part, float]:
        """Each part's expected seconds at this machine's pace; a part with no estimate gets
        the median of its suite's known ones, else none (it runs while time is left)."""
        parts = self.progress.countdown.expected
        pace = self.progress.countdown.pace()
        known: dict[str, list[float]] = {}
        for (_, suite), seconds in parts.items():
            if seconds is not None:
                known.setdefault(suite, []).append(seconds)
        return {part: pace * (seconds if seconds is not None else
                              statistics.median(known[part[1]]) if part[1] in known else 0.0)
                for part, seconds in parts.items()}

    def later(self, part: Part) -> list[Part]:
        """The parts still to run after ``part``."""
        done = self.progress.countdown.done
        index = self.order.index(part) if part in self.order else len(self.order)
        return [p for p in self.order[index + 1:] if p not in done and p not in
                self.budget.skipped]

    # -- pytest hooks ----------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)  # after the progress reporter has made its estimate
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        expected = self.progress.countdown.expected
        for item in session.items:
            cell = self.experiment.test_cells.get(item.nodeid)
            if cell is None or (cell.id, PREPARE) not in expected:
                continue
            for part in ((cell.id, PREPARE), (cell.id, suite_of(item.nodeid))):
                if part not in self.order:
                    self.order.append(part)
        if not expected:
            return
        training = {(plan.cell_id, PREPARE): expected[(plan.cell_id, PREPARE)]
                    for plan in self.progress.plans
                    if not plan.cached and self.experiment.trains(plan.approach)}
        line, fits = training_line(training, self.budget.seconds)
        if not fits:
            self.refused = True
            pytest.exit(line, returncode=pytest.ExitCode.USAGE_ERROR)
        self.progress.write(line, status=False)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """Skip a part the budget cannot fit, before its candidate is prepared."""
        part = self.part_of(item)
        if part is None or part[1] in ADAPTIVE_SUITES:
            return
        if part in self.budget.skipped:
            pytest.skip(self.budget.skipped[part])
        if part in self.part_deadline:
            return
        expected, left = self.expected(), self.budget.left()
        prepare = (part[0], PREPARE)
        if prepare not in self.progress.countdown.done:  # prepared in this test's setup
            left -= expected.get(prepare, 0.0)
        answer = share(part, expected, self.later(part), left)
        if not answer.run:
            self.budget.skipped[part] = answer.reason
            pytest.skip(answer.reason)
        self.part_deadline[part] = time.monotonic() + answer.seconds
        if answer.fraction is not None:
            self.budget.cut[part] = answer.fraction

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> None:
        """An adaptive test may score until its share of the part's time is spent; a test
        of a part cut short measures its fraction of the items, within the part's time."""
        part = self.part_of(item)
        self.budget.deadline_of_test = self.budget.fraction = None
        if part in self.budget.cut:
            self.budget.deadline_of_test = self.part_deadline[part]
            self.budget.fraction = self.budget.cut[part]
        if part is None or part[1] not in ADAPTIVE_SUITES:
            return
        if part not in self.part_deadline:
            answer = share(part, self.expected(), self.later(part), self.budget.left())
            self.part_deadline[part] = time.monotonic() + answer.seconds
        self.budget.start_test(self.part_deadline[part], self.progress.tests_left[part])

    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        self.budget.deadline_of_test = self.budget.fraction = None

    def part_of(self, item: pytest.Item) -> Part | None:
        """The part ``item`` belongs to, if the budget plans it (not a test of no cell, nor
        one of a cell ``--resume`` reuses)."""
        cell = self.experiment.test_cells.get(item.nodeid)
        part = None if cell is None else (cell.id, suite_of(item.nodeid))
        return part if part in self.order else None

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.refused:
            return
        for line in self.closing_lines():
            terminalreporter.write_line(line)

    # -- the end ---------------------------------------------------------------------------

    def closing_lines(self) -> list[str]:
        """How much of the budget the session used, what it decided and what it left open."""
        experiment, budget = self.experiment, self.budget
        used = time.monotonic() - budget.started
        lines = [f"time budget {minutes(budget.seconds).removeprefix('about ')}: used "
                 f"{clock(used)} ({used / budget.seconds:.0%})"]
        data = experiment.task_data()
        kind = "choice" if data.labels else "generation"
        plan = experiment.adaptive_plan
        assert plan is not None
        lines += decision_lines(experiment.references, kind, experiment.seeds,
                                len(data.eval), plan)
        lines += unmeasured_lines(budget.skipped, budget.cut)
        return lines
