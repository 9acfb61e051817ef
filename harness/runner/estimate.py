"""How long a session should take on this machine, and how much of it is left as it runs.

A session is cut into parts: each candidate's preparation (loading, training) and each suite
run on it. A part's expected seconds come from, in order of preference:

1. finished runs in the results database with the same approach, task, model, budget, device
   and precision (the median of the latest :data:`RECENT_RUNS`): preparation splits into
   training (``train_seconds`` in the run's info) and loading (the rest of
   ``prepare_seconds``); a suite's time is the gap between its last recorded metric and the
   previous suite's (or the candidate's preparation end);
2. for a suite the approach's past runs never ran, the median over other approaches' runs;
3. the reference timings of the default comparison (:data:`REFERENCE`), only for that
   comparison;
4. else the part is unknown, and the estimate says so rather than guess.

A trained candidate whose cache folder already holds a manifest costs its loading only. The
side runs of a curve (``--label-noise``, ``--data-sizes``) are counted in the overfitting
suite's part: each costs the approach's loading, its training scaled by the training size, and
its accuracy suite; past overfitting times are taken only from sessions without side runs.
While the session runs, :class:`Countdown` scales what is left by how fast the finished parts
went against their estimates (the pace), so the remaining time follows this machine.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.runner.store import open_read_only
from harness.runner.summary import SIDE_RUN_FIELDS

if TYPE_CHECKING:
    from harness.runner.matrix import Cell
    from harness.runner.session import ExperimentSession

PREPARE = "prepare"
"""The part name of a candidate's preparation (suites are named as in the store)."""
SIDE_RUN_SUITE = "overfitting"
"""The suite that prepares the side runs of the robustness and data-efficiency curves."""
RECENT_RUNS = 5
Part = tuple[str, str]
"""(cell id, ``prepare`` or a suite name)."""


@dataclass(frozen=True)
class Setting:
    """What must match for a past run's timings to say something about this session."""

    task: str
    model: str
    budget: str
    device: str
    precision: str


@dataclass(frozen=True)
class Timing:
    """Seconds one approach took: loading, training, each suite it ran."""

    load: float
    train: float
    suites: Mapping[str, float]
    runs: int
    """How many past runs this is the median of (0: the reference table)."""


REFERENCE_SOURCE = "benchmarks/README.md, make bench on 2 CPU cores"
REFERENCE_SETTING = Setting("sentiment", "smollm2-135m", "quick", "cpu", "bf16")
_REFERENCE_SUITES = ("accuracy", "data_quality", "distillation", "forgetting", "latency",
                     "overfitting")
_REFERENCE_ROWS = {  # load, train, then the seconds of _REFERENCE_SUITES
    "adapters": (5, 88, 40, 24, 0, 151, 23, 4),
    "distill": (4, 192, 32, 19, 61, 57, 25, 3),
    "few-shot": (0, 0, 61, 180, 0, 94, 42, 8),
    "full-ft": (3, 119, 37, 24, 0, 75, 23, 4),
    "lora": (1, 100, 45, 29, 0, 82, 83, 5),
    "peft": (1, 90, 45, 25, 0, 83, 77, 4),
    "qlora": (3, 146, 54, 31, 0, 99, 143, 6),
    "zero-shot": (0, 0, 44, 26, 0, 0, 25, 4),
}
REFERENCE = {
    name: Timing(load, train, dict(zip(_REFERENCE_SUITES, suites, strict=True)), 0)
    for name, (load, train, *suites) in _REFERENCE_ROWS.items()
}
"""Seconds per approach in the default comparison (``pytest suites/ --approach=all
--budget=quick --adaptive off``, ``sentiment``, the embedded model, bf16), measured alone on 2
CPU cores on 2026-12-07 (37 min 46 s in all; benchmarks/README.md "The default comparison,
adaptive against full"): load = prepare - train; suites not listed took 0 s (they skip on
``sentiment``). The first candidate's forgetting (adapters) includes the base model's probe
scores, which every later candidate of the session reuses (zero-shot's are the base's).
distill (opt-in) is the row of 2026-11-30, before the training speed-up; its teacher
(full-ft) is counted under full-ft. Used only for exactly that setting
(:data:`REFERENCE_SETTING`)."""


def reference_timings(setting: Setting) -> dict[str, Timing]:
    return dict(REFERENCE) if setting == REFERENCE_SETTING else {}


def past_timings(results: Path, setting: Setting, approaches: Iterable[str]) -> dict[str, Timing]:
    """Per approach, the median timings of its latest finished runs in ``results`` with this
    ``setting`` (read-only; a missing or unreadable file gives none)."""
    names = sorted(set(approaches))
    if not results.is_file() or not names:
        return {}
    try:
        connection = open_read_only(results, timeout=5.0)
    except sqlite3.Error:
        return {}
    try:
        return _read_timings(connection, setting, names)
    except sqlite3.Error:
        return {}
    finally:
        connection.close()


def _read_timings(connection: sqlite3.Connection, setting: Setting,
                  names: list[str]) -> dict[str, Timing]:
    rows = connection.execute(
        f"SELECT id, session, approach, started_at, finished_at, info_json, config_json "
        f"FROM runs WHERE status = 'finished' AND finished_at IS NOT NULL AND task = ? "
        f"AND model = ? AND budget = ? AND device = ? AND precision = ? "
        f"AND approach IN ({','.join('?' * len(names))}) ORDER BY id DESC",
        (setting.task, setting.model, setting.budget, setting.device, setting.precision,
         *names),
    ).fetchall()
    runs: dict[str, list[tuple[int, str, float, dict]]] = {}
    with_side_runs: set[str] = set()
    for run_id, session, approach, started, _, info_json, config_json in rows:
        if SIDE_RUN_FIELDS & json.loads(config_json).keys():  # a curve's extra run
            with_side_runs.add(session)
            continue
        info = json.loads(info_json)
        if isinstance(info.get("prepare_seconds"), (int, float)) and (
                len(runs.setdefault(approach, [])) < RECENT_RUNS):
            runs[approach].append((run_id, session, started, info))
    chosen = [run for approach_runs in runs.values() for run in approach_runs]
    if not chosen:
        return {}
    ids = [run[0] for run in chosen]
    marks = ",".join("?" * len(ids))
    ends: dict[int, dict[str, float]] = {}
    for run_id, suite, end in connection.execute(
            f"SELECT run_id, suite, MAX(recorded_at) FROM metrics WHERE run_id IN ({marks}) "
            f"GROUP BY run_id, suite", ids):
        ends.setdefault(run_id, {})[suite] = end
    sessions = sorted({run[1] for run in chosen})
    covered: dict[str, set[str]] = {}
    for session, suite in connection.execute(
            f"SELECT DISTINCT r.session, m.suite FROM metrics m JOIN runs r ON r.id = m.run_id "
            f"WHERE r.session IN ({','.join('?' * len(sessions))})", sessions):
        if not (suite == SIDE_RUN_SUITE and session in with_side_runs):  # their time is in it
            covered.setdefault(session, set()).add(suite)
    return {approach: _median_timing(approach_runs, ends, covered)
            for approach, approach_runs in runs.items()}


def suite_seconds(ready: float, ends: Mapping[str, float]) -> dict[str, float]:
    """Each suite's seconds from the time its last metric was recorded: suites ran one after
    the other from ``ready`` (the candidate's preparation end)."""
    seconds, previous = {}, ready
    for suite, end in sorted(ends.items(), key=lambda item: item[1]):
        seconds[suite], previous = max(0.0, end - previous), max(previous, end)
    return seconds


def _median_timing(runs: list[tuple[int, str, float, dict]], ends: dict[int, dict[str, float]],
                   covered: dict[str, set[str]]) -> Timing:
    loads, trains, samples = [], [], {}
    for run_id, session, started, info in runs:
        train = float(info.get("train_seconds") or 0.0)
        prepare = float(info["prepare_seconds"])
        loads.append(max(0.0, prepare - (0.0 if info.get("cache_hit") else train)))
        trains.append(train)
        run_ends = dict(ends.get(run_id, {}))
        ready = run_ends.pop(PREPARE, started + prepare)
        seconds = suite_seconds(ready, run_ends)
        for suite in covered.get(session, set()) - {PREPARE}:  # ran in that session: 0 = skipped
            samples.setdefault(suite, []).append(seconds.get(suite, 0.0))
    return Timing(statistics.median(loads), statistics.median(trains),
                  {suite: statistics.median(values) for suite, values in samples.items()},
                  len(runs))


@dataclass(frozen=True)
class CellPlan:
    """One candidate of the session: what it runs and whether its training is cached."""

    cell_id: str
    approach: str
    suites: tuple[str, ...]
    cached: bool = False
    side_runs: tuple[float, ...] = ()
    """The side runs its overfitting suite prepares (``--label-noise``, ``--data-sizes``), as
    their training size over the budget's (1.0 for a noisy run)."""


@dataclass
class Estimate:
    """Expected seconds of every part of a session (``None``: unknown) and their basis."""

    parts: dict[Part, float | None]
    past_runs: int = 0
    from_reference: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    """Cells with a part of unknown length."""
    cached: int = 0

    @property
    def known_seconds(self) -> float:
        return sum(seconds for seconds in self.parts.values() if seconds is not None)


def estimate(plans: list[CellPlan], past: Mapping[str, Timing],
             reference: Mapping[str, Timing]) -> Estimate:
    """The expected seconds of each part of ``plans`` (see the module docstring)."""
    other: dict[str, list[float]] = {}
    for timing in past.values():
        for suite, seconds in timing.suites.items():
            other.setdefault(suite, []).append(seconds)
    result = Estimate({})
    used_past: set[str] = set()
    for plan in plans:
        own, fallback = past.get(plan.approach), reference.get(plan.approach)
        timing = own or fallback
        if timing is None:
            prepare = None
        else:
            prepare = timing.load + (0.0 if plan.cached else timing.train)
            if own is not None:
                used_past.add(plan.approach)
            else:
                result.from_reference.append(plan.approach)
        result.parts[(plan.cell_id, PREPARE)] = prepare
        for suite in plan.suites:
            if own is not None and suite in own.suites:
                seconds: float | None = own.suites[suite]
            elif suite in other:
                seconds = statistics.median(other[suite])
            elif fallback is not None or own is not None:
                seconds = (fallback.suites if fallback else {}).get(suite, 0.0)
            else:
                seconds = None
            if suite == SIDE_RUN_SUITE and seconds is not None and plan.side_runs:
                side = own or fallback
                if side is None:
                    seconds = None
                else:
                    scoring = side.suites.get("accuracy", 0.0)
                    seconds += sum(side.load + side.train * scale + scoring
                                   for scale in plan.side_runs)
            result.parts[(plan.cell_id, suite)] = seconds
        if any(result.parts[(plan.cell_id, part)] is None for part in (PREPARE, *plan.suites)):
            result.unknown.append(plan.cell_id)
        result.cached += plan.cached
    result.past_runs = sum(past[name].runs for name in used_past)
    result.from_reference = list(dict.fromkeys(result.from_reference))
    return result


def cached_candidate(session: ExperimentSession, cell: Cell) -> bool:
    """Whether ``cell``'s trained candidate is already in the cache (a manifest where
    ``prepare`` looks), so it is reloaded rather than trained; compositions are not looked up
    (their key depends on the inner candidate) and count as trained."""
    from harness.train.trained import MANIFEST, TrainedApproach

    if session.options.retrain:
        return False
    approach = session.make_approach(cell.approach, cell.point)
    if not isinstance(approach, TrainedApproach):
        return False
    context = session.run_context(session.task_data(cell.seed), cell.seed, Path("."))
    return (approach.cache_folder(context) / MANIFEST).is_file()


def minutes(seconds: float) -> str:
    """``about 27 min``, ``under a minute``, ``about 2.1 h``."""
    if seconds < 60:
        return "under a minute"
    if seconds >= 100 * 60:
        return f"about {seconds / 3600:.1f} h"
    return f"about {round(seconds / 60)} min"


def describe(result: Estimate, *, cells: int, suites: int, results: Path) -> str:
    """The session's opening line: its size, the expected time and what it is based on."""
    size = (f"tunebench: {cells} candidate{'s' * (cells != 1)} x {suites} "
            f"suite{'s' * (suites != 1)}")
    if result.parts and len(result.unknown) == cells:
        return (f"{size}; no estimate of the time: no finished run with this task, model, "
                f"budget, device and precision in {results}, and no reference timing for it")
    basis = []
    if result.past_runs:
        basis.append(f"from {result.past_runs} past run{'s' * (result.past_runs != 1)} "
                     f"in {results}")
    if result.from_reference:
        basis.append(f"{', '.join(result.from_reference)} from reference timings "
                     f"({REFERENCE_SOURCE})")
    if result.unknown:
        basis.append(f"not counted, no timing yet: {', '.join(result.unknown)}")
    if result.cached:
        basis.append(f"{result.cached} candidate{'s' * (result.cached != 1)} cached")
    expected = minutes(result.known_seconds)
    if result.unknown:
        expected = f"at least {expected.removeprefix('about ')}"
    return f"{size}, expected {expected} on this machine ({'; '.join(basis)})"


@dataclass
class Countdown:
    """What is left of a session's expected time as its parts finish."""

    expected: dict[Part, float | None]
    spent: dict[Part, float] = field(default_factory=dict)
    done: set[Part] = field(default_factory=set)
    paced: set[Part] = field(default_factory=set)
    """Finished parts whose time says how fast this machine is (not failed, not skipped)."""

    def spend(self, part: Part, seconds: float, *, done: bool, paced: bool = True) -> None:
        self.spent[part] = self.spent.get(part, 0.0) + seconds
        if done:
            self.done.add(part)
            if paced:
                self.paced.add(part)

    def pace(self) -> float:
        """Actual over expected seconds of the finished parts (1 until a minute of them is
        known), kept within [0.25, 4] so one odd part cannot swing it."""
        known = [p for p in self.paced if self.expected.get(p) is not None]
        expected = sum(self.expected[p] or 0.0 for p in known)
        if expected < 60:
            return 1.0
        return min(4.0, max(0.25, sum(self.spent.get(p, 0.0) for p in known) / expected))

    def remaining(self, running: tuple[Part, float] | None = None) -> tuple[float, bool]:
        """Expected seconds left and whether some part left has no estimate; ``running`` is
        a part under way and the seconds it has taken so far (not yet spent)."""
        pace, left, unknown = self.pace(), 0.0, False
        for part, expected in self.expected.items():
            if part in self.done:
                continue
            if expected is None:
                unknown = True
                continue
            taken = self.spent.get(part, 0.0)
            if running is not None and running[0] == part:
                taken += running[1]
            left += max(0.0, expected * pace - taken)
        return left, unknown
