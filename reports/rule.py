"""Is a candidate good enough against the best one? A non-inferiority test, with a fallback.

Every candidate of a task answers the same eval items, so the comparison with the best is
paired, item by item (matched by item id): the 95% paired-bootstrap CI of the difference,
candidate minus best (Koehn, 2004, "Statistical Significance Tests for Machine Translation
Evaluation"; the two-stage bootstrap, draws then items, when either side answered with several
demonstration draws), and McNemar's exact test on the items one got right and the other wrong
(McNemar, 1947; a paired randomisation test for graded scores). A paired comparison is what
Dror et al. (2018, "The Hitchhiker's Guide to Testing Statistical Significance in Natural
Language Processing") recommend for two systems on one test set.

The verdict follows the convention of non-inferiority trials (Wellek, 2010, "Testing
Statistical Hypotheses of Equivalence and Noninferiority", 2nd ed.): a candidate is good
enough when the LOWER bound of that 95% CI lies at or above ``-margin``, i.e. the data show it
loses at most ``margin`` against the best (one-sided, at 2.5%). "Not significantly different"
is no evidence of being as good: on a small eval set the interval is wide and hardly any
difference is significant, so that reading would call good enough a candidate whose interval
reaches far below the margin; here a wide interval means "not shown non-inferior". The
p-value of the paired test is reported beside the verdict as evidence, and read at ``alpha``
only to say so; it never decides.

Without per-item rows (an older database, a metric not backed by items) no paired interval
exists, and the fallback bounds the unpaired difference from the two recorded 95% CIs,
conservatively: its lower bound is the candidate's CI low minus the best's CI high. Whatever
the correlation of the two estimates, SD(X - Y) <= SD(X) + SD(Y), so (for normal-approximation
intervals) adding the two half-widths gives an interval of the difference that covers at least
95%; adding them in quadrature would assume independent estimates, which two candidates
scored on the same items are not, and positively correlated ones are what makes the paired
interval narrower. The fallback is therefore much stricter than the paired test (the price of
lacking the rows: Schenker & Gentleman, 2001, on why two CIs are a weak stand-in for the
difference's), applies the same non-inferiority logic and margin, and the verdict names it.
A candidate or best without a recorded CI cannot be shown non-inferior.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from harness.measure.adaptive import DEFAULT_MARGIN as DEFAULT_MARGIN  # one margin for both
from harness.measure.compare import compare_by_id
from harness.measure.metrics import Estimate
from harness.measure.sequential import difference_sequence

DEFAULT_ALPHA = 0.05
"""Level at which the evidence calls the paired test's p-value significant (not the verdict)."""
PAIRED, UNPAIRED, BEST = "paired", "unpaired CIs", "best"
"""How a verdict was reached."""
_SLACK = 1e-9  # a lower bound of exactly -margin is within it despite float rounding


class Estimated(Protocol):
    """A candidate's name and headline estimate with its 95% CI."""

    @property
    def name(self) -> str: ...
    @property
    def value(self) -> float: ...
    @property
    def low(self) -> float | None: ...
    @property
    def high(self) -> float | None: ...


class Scored(Estimated, Protocol):
    """What the test reads of a candidate (``reports.decision.Candidate`` has it)."""

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


def non_inferior(low: float | None, margin: float) -> bool:
    """Whether a difference's 95% CI lower bound ``low`` shows a loss of at most ``margin``."""
    return low is not None and low >= -margin - _SLACK


@dataclass(frozen=True)
class Verdict:
    """One candidate against the best on the headline metric (differences: candidate minus
    best)."""

    name: str
    test: str
    """:data:`PAIRED`, :data:`UNPAIRED` (the fallback) or :data:`BEST` (the best itself)."""
    good_enough: bool
    difference: float = 0.0
    low: float | None = None
    high: float | None = None
    """The 95% CI of the difference: paired bootstrap (paired test), or the conservative
    interval formed from the two CIs (fallback; ``None`` when either lacks a CI). The verdict
    reads ``low``."""
    p_value: float | None = None
    """The paired test's two-sided p-value (paired test only): McNemar's exact test, the
    paired randomisation test's for graded scores, or the two-stage bootstrap's when either
    side answered with several draws (``test_name``). Evidence, not the verdict."""
    test_name: str = "McNemar"
    """The paired test behind ``p_value``."""
    shared: int | None = None
    """Items both answered (paired test only)."""
    fallback: str = ""
    """Why the paired test could not be used (fallback only)."""
    sequential: bool = False
    """The CI is the anytime-valid confidence sequence of the paired difference, because
    either side stopped adaptively (``--adaptive on``), not the paired bootstrap."""

    def evidence(self) -> str:
        """The numbers behind the verdict, e.g. ``paired difference -0.010 [-0.040, +0.020]
        on 200 shared items, McNemar p = 0.63``."""
        if self.test == BEST:
            return "the best candidate"
        if self.test == PAIRED:
            interval = " (confidence sequence)" if self.sequential else ""
            return (f"paired difference {_signed(self.difference)} [{_signed(self.low)}, "
                    f"{_signed(self.high)}]{interval} on {self.shared} shared items, "
                    f"{self.test_name} "
                    f"p {'' if (self.p_value or 0) < 0.001 else '= '}{p_text(self.p_value)}")
        interval = ("" if self.low is None else
                    f", conservatively [{_signed(self.low)}, {_signed(self.high)}]")
        return (f"{self.fallback}, so the two 95% CIs replaced the paired test: difference "
                f"{_signed(self.difference)}{interval}")

    def reason(self, *, margin: float, alpha: float) -> str:
        """Why it is or is not good enough, e.g. ``non-inferior: the CI's lower bound -0.012
        is above -0.02``; with the paired p-value where it could mislead (not significant,
        yet not shown non-inferior; significantly worse, yet within the margin)."""
        if self.test == BEST:
            return "the best candidate"
        bound = "the CI's lower bound" if self.test == PAIRED else "the conservative lower bound"
        if self.low is None:
            return "not shown non-inferior: without both 95% CIs there is no lower bound"
        if not self.good_enough:
            text = f"not shown non-inferior: {bound} {self.low:+.3f} is below -{margin:g}"
        else:
            side = "above" if self.low > -margin + _SLACK else "at"
            text = f"non-inferior: {bound} {self.low:+.3f} is {side} -{margin:g}"
        if self.test != PAIRED or self.p_value is None or self.difference >= 0:
            return text
        significant = self.p_value < alpha
        if self.good_enough and significant:
            return f"{text}, though significantly worse (p < {alpha:g}) by less than the margin"
        if not self.good_enough and not significant:
            return (f"{text}, though the difference is not significant (p >= {alpha:g}): "
                    "too few eval items to show it is within the margin")
        return text


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


def p_text(p: float | None) -> str:
    """``0.63``, ``0.0498`` (three digits below 0.1, so a p-value is never rounded onto a
    usual alpha), ``< 0.001``."""
    if p is None:
        return "-"
    return "< 0.001" if p < 0.001 else f"{p:.2g}" if p >= 0.1 else f"{p:.3g}"


def _sequence(candidate: Scored, best: Scored) -> Estimate | None:
    """The anytime-valid confidence sequence of ``candidate - best`` on their shared items,
    in the order the candidate scored them (:mod:`harness.measure.sequential`), when either
    stopped adaptively: a bootstrap CI on items whose number was chosen by looking at them is
    not a 95% interval (``harness.measure.adaptive``). ``None`` otherwise, and for several
    draws (a sequence over items leaves out the draws' variance; such candidates are scored
    in full) or scores outside [0, 1]."""
    if not (getattr(candidate, "sequential", False) or getattr(best, "sequential", False)):
        return None
    if candidate.draws or best.draws or not candidate.items or not best.items:
        return None
    shared = [item for item in candidate.items if item in best.items]
    mine = [float(candidate.items[item]) for item in shared]
    theirs = [float(best.items[item]) for item in shared]
    if not shared or not all(0.0 <= v <= 1.0 for v in (*mine, *theirs)):
        return None
    return difference_sequence(mine, theirs)


def _missing(candidate: Scored, best: Scored) -> str:
    lacking = [c.name for c in (candidate, best) if not c.items]
    if lacking:
        return f"no per-item rows for {' and '.join(lacking)}"
    return f"no item ids shared with {best.name}"


def _unpaired(candidate: Scored, best: Scored) -> tuple[float | None, float | None]:
    """The conservative 95% interval of ``candidate - best`` from the two CIs (module
    docstring); ``(None, None)`` when either lacks one."""
    if None in (candidate.low, candidate.high, best.low, best.high):
        return None, None
    return candidate.low - best.high, candidate.high - best.low


def judge(candidate: Scored, best: Scored, *, margin: float = DEFAULT_MARGIN,
          seed: int = 0) -> Verdict:
    """The verdict on ``candidate`` against ``best`` (module docstring)."""
    if candidate is best:
        return Verdict(candidate.name, BEST, True)
    comparison = (compare_by_id(best.items, candidate.items, seed=seed,
                                draws=(best.draws, candidate.draws))
                  if candidate.items and best.items else None)
    if comparison is not None:
        delta = comparison.delta
        test_name = "McNemar" if comparison.test == "McNemar's exact test" else comparison.test
        sequence = _sequence(candidate, best)
        return Verdict(candidate.name, PAIRED, non_inferior((sequence or delta).low, margin),
                       delta.value, (sequence or delta).low, (sequence or delta).high,
                       p_value=comparison.p_value, shared=comparison.n, test_name=test_name,
                       sequential=sequence is not None)
    low, high = _unpaired(candidate, best)
    return Verdict(candidate.name, UNPAIRED, non_inferior(low, margin),
                   candidate.value - best.value, low, high, fallback=_missing(candidate, best))
