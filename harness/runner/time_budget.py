"""``--time-budget``: a session that fits in the time it is given, decision-relevant work first.

The session already estimates each of its parts (a candidate's preparation, each suite on it:
:mod:`harness.runner.estimate`) and tracks how fast they go. With a budget, before each part
starts it asks what the budget can still give it:

- **Preparation** (loading, training) is never cut: a candidate is trained whole or not at
  all. If the training of the candidates not cached (with their loading) alone exceeds the
  budget, the session says so before anything trains.
- **Suites rank by what the decision needs** (:data:`RANKS`): accuracy (the headline the
  decision rule reads) first, then forgetting (the recommendation's pitfalls), latency (cost),
  then the rest. Parts run in the session's usual order, candidate by candidate, but each
  part may use only what is left after reserving what the later parts of a higher rank are
  expected to need (every later preparation; each later accuracy suite's adaptive share).
- **Accuracy is adaptive** (:mod:`harness.measure.adaptive`): it stops a candidate when its
  question is settled, or when its share of what is left is spent (``budget``). Its share is
  in proportion to its expected time among the accuracy suites still to come, after the
  later preparations; it always scores at least one look.
- **Forgetting and latency can be cut short** (:data:`CUT_SUITES`): each gets its share of
  what is left after the reserve, in proportion to its expected time among the parts of its
  suite still to come (as accuracy), and measures that fraction of its items (general
  probes and texts in the seed's order, latency requests), stopping also when the clock
  says its share is spent. Given less than :data:`MIN_FRACTION` of its time it is skipped.
- **Other suites run whole or are skipped** ("time budget: ..."), when their expected time
  does not fit in what is left after the reserve; one with no known cost (no timing, or
  one that does not apply to the task) runs.

At the end the session says what was decided and what was not: each candidate's headline
against the best one, paired on their shared items with the anytime-valid confidence
sequence, and for a pair not separated, about how many more items would be needed (a
sequence's width shrinks about as 1/sqrt(n), so n (width / gap)^2 in all).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.measure.adaptive import (
    REASONS,
    AdaptivePlan,
    References,
    Row,
    chunks_in_time,
    paired_difference,
)
from harness.runner.estimate import PREPARE, Part, minutes

RANKS = {PREPARE: 0, "accuracy": 1, "forgetting": 2, "latency": 3}
"""What a part's result means to the decision, lowest first; any other suite ranks after."""
LAST_RANK = max(RANKS.values()) + 1
ADAPTIVE_SUITES = ("accuracy",)
"""Suites that can stop a candidate early; the others run whole or not at all."""
CUT_SUITES = ("forgetting", "latency")
"""Suites that measure fewer items (probes, requests) when the budget cannot fit them whole."""
MIN_FRACTION = 0.15
"""Least share of its expected time a cut part runs on (about 70 of 480 general probes, 4 of
24 latency requests); given less, it is skipped."""
ADAPTIVE_SHARE = 0.6
"""Share of a full evaluation's time an adaptive one took on the default comparison's accuracy
suite (58%: benchmarks/README.md, "Adaptive evaluation against the full one"): what a later
accuracy suite is expected to need, and so what a lower-ranked part must leave it."""

_UNITS = {"s": 1, "m": 60, "h": 3600}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smh])")


def parse_duration(text: str) -> float:
    """Seconds in ``10m``, ``90s``, ``1h30m``, ``1.5h`` or a plain number of seconds."""
    spec = text.strip().lower()
    try:
        seconds = float(spec)
    except ValueError:
        parts = _DURATION.findall(spec)
        if not parts or _DURATION.sub("", spec).strip():
            raise ValueError(f"--time-budget {text!r}: give a duration such as 10m, 90s, "
                             f"1h30m or a number of seconds") from None
        seconds = sum(float(value) * _UNITS[unit] for value, unit in parts)
    if seconds <= 0:
        raise ValueError(f"--time-budget {text!r}: the budget must be more than 0 s")
    return seconds


def rank(part: Part) -> int:
    return RANKS.get(part[1], LAST_RANK)


def needed(part: Part, seconds: float) -> float:
    """What ``part``, expected to take ``seconds`` in full, is expected to need: less for an
    adaptive suite (:data:`ADAPTIVE_SHARE`), all of it for the others."""
    return seconds * ADAPTIVE_SHARE if part[1] in ADAPTIVE_SUITES else seconds


@dataclass(frozen=True)
class Share:
    """What the budget gives one part as it starts."""

    run: bool
    seconds: float
    """Seconds it may take (adaptive parts stop at the end of a look past them)."""
    reason: str = ""
    """Why it does not run."""
    fraction: float | None = None
    """Share of its items a part cut short measures (:data:`CUT_SUITES`); ``None``: all."""


def share(part: Part, expected: Mapping[Part, float], later: Sequence[Part],
          left: float) -> Share:
    """The budget's answer for ``part``, about to start with ``left`` seconds of the budget
    left; ``later``: the parts still to come after it; ``expected``: each part's expected
    seconds at this machine's pace (module docstring)."""
    mine = expected[part]
    reserve = sum(needed(p, expected[p]) for p in later if rank(p) < rank(part))
    available = left - reserve
    if part[1] == PREPARE or mine == 0:  # nothing known to cost time (e.g. does not apply)
        return Share(True, mine)
    # an adaptive or cut part shares what is available with the later parts of its suite
    given = max(0.0, available) * mine / (mine + sum(expected[p] for p in later
                                                     if p[1] == part[1]))
    if part[1] in ADAPTIVE_SUITES:
        return Share(True, given)
    if part[1] in CUT_SUITES:
        if given >= mine:
            return Share(True, mine)
        if given >= MIN_FRACTION * mine:
            return Share(True, given, fraction=given / mine)
        return Share(False, 0.0, f"time budget: {part[1]} of {part[0]} would take about "
                                 f"{mine:.0f} s, {given:.0f} s are left for it (at least "
                                 f"{MIN_FRACTION:.0%} of it is needed)")
    if mine <= available:
        return Share(True, mine)
    return Share(False, 0.0, f"time budget: {part[1]} of {part[0]} would take about "
                             f"{mine:.0f} s, {max(0.0, available):.0f} s are left for it")


@dataclass
class TimeBudget:
    """The clock of one session's ``--time-budget`` and the parts it skipped."""

    seconds: float
    started: float = field(default_factory=time.monotonic)
    deadline_of_test: float | None = None
    """When the test under way must stop scoring (adaptive suites check after each look)."""
    fraction: float | None = None
    """Share of its items the test under way may measure (its part cut short), else None."""
    skipped: dict[Part, str] = field(default_factory=dict)
    """Parts not run for lack of time, and why."""
    cut: dict[Part, float] = field(default_factory=dict)
    """Parts that measured only a fraction of their items, and the fraction."""

    def left(self) -> float:
        return self.seconds - (time.monotonic() - self.started)

    def spent(self) -> bool:
        """Whether the test under way has used its share (read by adaptive suites)."""
        return self.deadline_of_test is not None and time.monotonic() >= self.deadline_of_test

    def allowed(self, n: int) -> int:
        """How many of ``n`` items the test under way may measure (at least one)."""
        return n if self.fraction is None else max(1, min(n, math.ceil(n * self.fraction)))

    def start_test(self, part_deadline: float, tests_left: int) -> None:
        """A test of a part begins: it may use its even share of what the part has left."""
        now = time.monotonic()
        self.deadline_of_test = now + max(0.0, part_deadline - now) / max(1, tests_left)


def scored_in_time(budget: TimeBudget | None, plan: AdaptivePlan | None, items: Sequence[Any],
                   seed: int, score: Callable[[list[Any]], Mapping[str, list[Row]]],
                   ) -> tuple[list[Any], dict[str, list[Row]]]:
    """``(items, rows by view)`` of ``score(chunk) -> {view: rows}`` over every item, or, for a
    test whose part the budget cuts short, over its share of them (:meth:`TimeBudget.allowed`),
    chunk by chunk in the seed's order until the part's time is spent; the items kept come back
    in their given order, so a part not cut is scored exactly as without a budget."""
    if budget is None or budget.fraction is None or plan is None:
        return list(items), dict(score(list(items)))
    kept: list[Any] = []
    by_view: dict[str, list[Row]] = {}
    for chunk in chunks_in_time(items, seed, plan, budget.spent,
                                limit=budget.allowed(len(items))):
        for view, rows in score(chunk).items():
            by_view.setdefault(view, []).extend(rows)
        kept += chunk
    position = {item.id: i for i, item in enumerate(items)}
    order = sorted(range(len(kept)), key=lambda k: position[kept[k].id])
    return [kept[k] for k in order], {view: [rows[k] for k in order]
                                      for view, rows in by_view.items()}


def cut_short(scored: int, available: int) -> dict[str, Any]:
    """What a metric measured on ``scored`` of ``available`` items stores of its cut (nothing
    when all were measured)."""
    if scored >= available:
        return {}
    return {"n_scored": scored, "n_available": available, "stopped": "budget",
            "stop_reason": REASONS["budget"]}


def training_line(training: Mapping[Part, float | None], budget: float) -> tuple[str, bool]:
    """The opening line of a budgeted session and whether its training fits: ``training``, the
    expected preparation (loading and training) of each candidate that trains, not cached."""
    prepare = list(training.values())
    known = sum(s for s in prepare if s is not None)
    unknown = any(s is None for s in prepare)
    given = minutes(budget).removeprefix("about ")
    if known > budget:
        return (f"--time-budget {given} cannot fit even the "
                f"training, {minutes(known)} on this machine with loading: give "
                f"at least {round(known / 60) + 1} min, fewer approaches, or train them first "
                f"(a later session reuses cached candidates)", False)
    if not prepare:
        preparing = "nothing to train"
    elif unknown and not known:
        preparing = "training not known yet (no past run to go by)"
    else:
        preparing = f"training {minutes(known)}" + (" (some not known yet)" if unknown else "")
    return (f"time budget {given}: {preparing}, the "
            f"rest for measurement: accuracy first (adaptive), then forgetting, latency, the "
            f"other suites while time is left", True)


def items_needed(difference_low: float, difference_high: float, value: float, n: int,
                 margin: float) -> int:
    """About how many paired items in all would separate a pair not yet separated: until the
    sequence clears ``-margin`` on one side (worse, or not worse), its half-width shrinking as
    1/sqrt(n)."""
    half = (difference_high - difference_low) / 2
    gap = (-margin - value) if value < -margin else (value + margin)
    if gap <= 0:
        return n
    return max(n + 1, round(n * (half / gap) ** 2))


def decision_lines(references: References, kind: str, seeds: Iterable[int],
                   available: int, plan: AdaptivePlan) -> list[str]:
    """What the session decided on its headline and what it left open: each candidate against
    the best one (highest mean), paired on the items both scored."""
    lines: list[str] = []
    seeds = list(seeds)
    for seed in seeds:
        names = references.names(kind, seed)
        best = references.best(kind, seed)
        if best is None or len(names) < 2:
            continue
        tag = f" (seed {seed})" if len(seeds) > 1 else ""
        decided, open_ = [], []
        for name in names:
            if name == best.name:
                continue
            other = references.get(kind, seed, name)
            d = paired_difference(list(other.values.values()), list(other.values), best, plan)
            if d is None:
                open_.append(f"{name} vs {best.name}: no item scored by both")
                continue
            text = f"{d.value:+.3f} [{d.low:+.3f}, {d.high:+.3f}] at n={d.n}"
            if d.high < -plan.margin:
                decided.append(f"{name} worse than {best.name} ({text})")
            elif d.low >= -plan.margin:
                decided.append(f"{name} within the margin of {best.name} or better ({text})")
            else:
                more = items_needed(d.low, d.high, d.value, d.n, plan.margin) - d.n
                need = (f"its estimate lies on the margin ({-plan.margin:+g}): more items "
                        f"would narrow the interval around it without separating it"
                        if more <= 0 else
                        f"about {more} more items would be needed" if d.n + more <= available
                        else f"more items than the {available} of the eval set would be "
                             f"needed")
                open_.append(f"{name} vs {best.name}: not separated at n={d.n} of "
                             f"{available} ({d.value:+.3f} [{d.low:+.3f}, {d.high:+.3f}]); "
                             f"{need}")
        if decided:
            lines.append(f"decided{tag}: " + "; ".join(decided))
        lines.extend(f"not decided{tag}: {line}" for line in open_)
    return lines


def unmeasured_lines(skipped: Iterable[Part], cut: Mapping[Part, float]) -> list[str]:
    """The closing lines on what the budget left out: the parts ``skipped``, and those ``cut``
    to a fraction of their items, by suite."""

    def by_suite(named: Iterable[tuple[Part, str]]) -> str:
        suites: dict[str, list[str]] = {}
        for (_, suite), text in named:
            suites.setdefault(suite, []).append(text)
        return "; ".join(f"{suite} ({', '.join(cells)})" for suite, cells in suites.items())

    skipped = list(skipped)
    lines = []
    if skipped:
        lines.append("not measured, for lack of time: "
                     + by_suite((part, part[0]) for part in skipped))
    if cut:
        lines.append("measured on part of their items, for lack of time: "
                     + by_suite((part, f"{part[0]} {fraction:.0%}")
                                for part, fraction in cut.items()))
    return lines
