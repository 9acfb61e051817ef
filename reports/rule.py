"""Is a candidate good enough against the best one? A paired test, with a stated fallback.

Every candidate of a task answers the same eval items, so the comparison with the best is
paired, item by item (matched by item id): the paired-bootstrap CI of the difference
(Koehn, 2004, "Statistical Significance Tests for Machine Translation Evaluation") and
McNemar's exact test on the items one got right and the other wrong (McNemar, 1947). A
paired test is what Dror et al. (2018, "The Hitchhiker's Guide to Testing Statistical
Significance in Natural Language Processing") recommend for two systems on one test set;
checking whether two 95% CIs overlap is weaker and biased, since intervals can overlap while
the difference is significant (Schenker & Gentleman, 2001, "On Judging the Significance of
Differences by Examining the Overlap Between Confidence Intervals").

A candidate is good enough when the difference is not significant at ``alpha`` (p >=
``alpha``) and its point estimate is no worse than ``-margin``: "not shown to differ" alone
would let a small eval set call a clearly worse candidate good enough, so the margin states
how much accuracy the user accepts to give up. Without per-item rows (an older database, a
metric not backed by items) the candidate falls back to the CI-overlap test (and the same
margin), and the verdict says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from harness.measure.compare import compare_by_id, intervals_overlap

DEFAULT_MARGIN = 0.02
"""Accuracy (absolute) a cheaper candidate may lose against the best and still be chosen."""
DEFAULT_ALPHA = 0.05
"""Significance level of the paired test."""
PAIRED, OVERLAP, BEST = "paired", "CI overlap", "best"
"""How a verdict was reached."""
_SLACK = 1e-9  # a difference of exactly -margin is within it despite float rounding


class Scored(Protocol):
    """What the test reads of a candidate (``reports.decision.Candidate`` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def value(self) -> float: ...
    @property
    def low(self) -> float | None: ...
    @property
    def high(self) -> float | None: ...
    @property
    def items(self) -> Mapping[str, bool] | None: ...
    @property
    def draws(self) -> Mapping[str, int] | None: ...


def check_settings(margin: float, alpha: float) -> None:
    """``ValueError`` for a margin outside [0, 1) or an alpha outside (0, 1)."""
    for label, value in (("margin", margin), ("alpha", alpha)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise ValueError(f"{label} must be a finite number, got {value!r}")
    if not 0 <= margin < 1:
        raise ValueError(f"margin is an absolute accuracy difference: it must be in [0, 1), "
                         f"got {margin:g}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha is a significance level: it must be in (0, 1), got {alpha:g}")


@dataclass(frozen=True)
class Verdict:
    """One candidate against the best on the headline metric (differences: candidate minus
    best)."""

    name: str
    test: str
    """:data:`PAIRED`, :data:`OVERLAP` (the fallback) or :data:`BEST` (the best itself)."""
    good_enough: bool
    difference: float = 0.0
    low: float | None = None
    high: float | None = None
    """The 95% paired-bootstrap CI of the difference (paired test only)."""
    p_value: float | None = None
    """The paired test's two-sided p-value (paired test only): McNemar's exact test, or the
    two-stage bootstrap's when either side answered with several draws (``test_name``)."""
    test_name: str = "McNemar"
    """The paired test behind ``p_value``."""
    shared: int | None = None
    """Items both answered (paired test only)."""
    overlap: bool | None = None
    """Whether the two 95% CIs overlap (fallback only)."""
    fallback: str = ""
    """Why the paired test could not be used (fallback only)."""

    def evidence(self) -> str:
        """The numbers behind the verdict, e.g. ``paired difference -0.010 [-0.040, 0.020]
        on 200 shared items, McNemar p = 0.63``."""
        if self.test == BEST:
            return "the best candidate"
        if self.test == PAIRED:
            return (f"paired difference {_signed(self.difference)} [{_signed(self.low)}, "
                    f"{_signed(self.high)}] on {self.shared} shared items, {self.test_name} "
                    f"p {'' if (self.p_value or 0) < 0.001 else '= '}{p_text(self.p_value)}")
        return (f"{self.fallback}, so the CI-overlap test replaced the paired test; "
                f"difference {_signed(self.difference)}")

    def reason(self, *, margin: float, alpha: float) -> str:
        """Why it is or is not good enough, e.g. ``not significant (p >= 0.05), within the
        0.02 margin``."""
        if self.test == BEST:
            return "the best candidate"
        if self.test == PAIRED:
            test = (f"not significant (p >= {alpha:g})" if (self.p_value or 0) >= alpha
                    else f"significantly different (p < {alpha:g})")
        else:
            test = "95% CIs overlap" if self.overlap else "95% CIs do not overlap"
        within = self.difference >= -margin - _SLACK
        return f"{test}, {'within' if within else 'beyond'} the {margin:g} margin"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


def p_text(p: float | None) -> str:
    """``0.63``, ``0.0498`` (three digits below 0.1, so a p-value is never rounded onto a
    usual alpha), ``< 0.001``."""
    if p is None:
        return "-"
    return "< 0.001" if p < 0.001 else f"{p:.2g}" if p >= 0.1 else f"{p:.3g}"


def _interval(candidate: Scored) -> tuple[float, float]:
    low = candidate.value if candidate.low is None else candidate.low
    high = candidate.value if candidate.high is None else candidate.high
    return low, high


def _missing(candidate: Scored, best: Scored) -> str:
    lacking = [c.name for c in (candidate, best) if not c.items]
    if lacking:
        return f"no per-item rows for {' and '.join(lacking)}"
    return f"no item ids shared with {best.name}"


def judge(candidate: Scored, best: Scored, *, margin: float = DEFAULT_MARGIN,
          alpha: float = DEFAULT_ALPHA, seed: int = 0) -> Verdict:
    """The verdict on ``candidate`` against ``best`` (module docstring)."""
    if candidate is best:
        return Verdict(candidate.name, BEST, True)
    comparison = (compare_by_id(best.items, candidate.items, seed=seed,
                                draws=(best.draws, candidate.draws))
                  if candidate.items and best.items else None)
    if comparison is not None:
        delta = comparison.delta
        good = comparison.p_value >= alpha and delta.value >= -margin - _SLACK
        return Verdict(candidate.name, PAIRED, good, delta.value, delta.low, delta.high,
                       p_value=comparison.p_value, shared=comparison.n,
                       test_name=comparison.test if comparison.clustered else "McNemar")
    difference = candidate.value - best.value
    overlap = intervals_overlap(_interval(candidate), _interval(best))
    return Verdict(candidate.name, OVERLAP, overlap and difference >= -margin - _SLACK,
                   difference, overlap=overlap, fallback=_missing(candidate, best))
