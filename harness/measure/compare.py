"""Comparing candidates: paired tests on shared items, unpaired gaps, seeds and ties.

- Paired comparison of two candidates scored on the same items (a base model and its
  fine-tuned version on the forgetting probes, or any two runs of one task): the mean
  difference with a paired-bootstrap CI (Koehn, 2004), the items fixed and broken, and
  McNemar's exact test on those discordant pairs (McNemar, 1947; the exact binomial form
  recommended for small counts by Fagerland, Lydersen & Laake, 2013). Graded per-item scores
  (chrF, token F1, similarity) are compared the same way, with a paired approximate
  randomisation test (sign flips of the per-item differences; Noreen, 1989, as used for MT
  metrics by Riezler & Maxwell, 2005) in place of McNemar's.
- Unpaired gaps between two samples (train vs eval accuracy) with an independent bootstrap.
- Several seeds of one approach: mean, standard deviation and a Student-t interval over the
  per-seed values.
- Statistically tied groups: candidates whose intervals overlap the group leader's.

Everything here is pure (numbers in, numbers out), so suites, reports and the dashboard call
the same code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from harness.measure.metrics import (
    BOOTSTRAP_RESAMPLES,
    CONFIDENCE,
    Estimate,
    clustered_p_value,
    paired_difference,
)


def mcnemar_exact(fixed: int, broken: int) -> float:
    """Two-sided exact McNemar p-value for ``fixed`` (wrong -> right) and ``broken`` (right
    -> wrong) discordant pairs: under the null each discordant pair goes either way with
    probability 1/2, so the count is Binomial(fixed + broken, 1/2)."""
    if fixed < 0 or broken < 0:
        raise ValueError("discordant counts cannot be negative")
    n = fixed + broken
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(fixed, broken) + 1)) / 2**n
    return min(1.0, 2 * tail)


RANDOMISATION_RESAMPLES = 10_000
"""Sign-flip resamples of the paired randomisation test."""


@dataclass(frozen=True)
class PairedComparison:
    """Candidate B against candidate A on the same items (B minus A).

    For right/wrong items the counts are the usual 2x2 table; for graded scores ``fixed`` and
    ``broken`` count the items B scores higher and lower than A, ``both_right`` the ties, and
    ``both_wrong`` is 0 (:attr:`graded` tells which)."""

    delta: Estimate
    """Mean of ``b - a`` per item, with a paired-bootstrap CI."""
    fixed: int
    """Items A got wrong and B right (graded: B higher)."""
    broken: int
    """Items A got right and B wrong (graded: B lower)."""
    both_right: int
    both_wrong: int
    p_value: float
    """McNemar's exact two-sided p-value (graded: the paired randomisation test's)."""
    graded: bool = False
    """Whether the items carried graded scores rather than right/wrong."""
    clustered: bool = False
    """Whether the items came in draws (few-shot demonstrations), so the CI and the p-value
    are the two-stage bootstrap's (:func:`harness.measure.metrics.clustered_mean`)."""

    @property
    def n(self) -> int:
        return self.fixed + self.broken + self.both_right + self.both_wrong

    @property
    def test(self) -> str:
        """The name of the paired test behind :attr:`p_value`."""
        if self.clustered:
            return "two-stage paired bootstrap (draws, then items)"
        return "paired randomisation test" if self.graded else "McNemar's exact test"


def is_binary(values: Sequence[float] | np.ndarray) -> bool:
    """Whether every value is right/wrong (a bool, 0 or 1)."""
    return bool(np.isin(np.asarray(values, dtype=float), (0.0, 1.0)).all())


def randomisation_p_value(differences: Sequence[float], *, seed: int = 0,
                          resamples: int = RANDOMISATION_RESAMPLES) -> float:
    """Two-sided p-value of a paired approximate randomisation test: under the null each
    item's difference is as likely to have the other sign, so the observed mean difference is
    compared with the means after random sign flips; ``(hits + 1) / (resamples + 1)``."""
    d = np.asarray(differences, dtype=float)
    observed = abs(d.mean()) - 1e-12
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, resamples, 1000):
        signs = rng.choice((-1.0, 1.0), size=(min(1000, resamples - start), len(d)))
        hits += int((np.abs((signs * d).mean(axis=1)) >= observed).sum())
    return (hits + 1) / (resamples + 1)


def paired_comparison(
    a_correct: Sequence[bool] | Sequence[float], b_correct: Sequence[bool] | Sequence[float],
    *, seed: int = 0, clusters: Sequence[object] | None = None,
) -> PairedComparison:
    """Compare two candidates' per-item scores on the same items, in the same order:
    right/wrong items by McNemar's exact test, graded scores by the paired randomisation
    test (:func:`randomisation_p_value`). Items that come in ``clusters`` (the draw each was
    answered with, by either side) are not independent, so both tests would claim too much:
    then the CI and the p-value come from the two-stage bootstrap, pairs resampled within
    their draw (:func:`harness.measure.metrics.clustered_p_value`)."""
    if len(a_correct) != len(b_correct):
        raise ValueError(f"paired scores need the same items: {len(a_correct)} vs "
                         f"{len(b_correct)}")
    if clusters is not None and len(set(clusters)) > 1:
        a, b = np.asarray(a_correct, dtype=float), np.asarray(b_correct, dtype=float)
        difference = b - a
        return PairedComparison(
            delta=paired_difference(a, b, seed=seed, clusters=clusters),
            fixed=int((difference > 0).sum()), broken=int((difference < 0).sum()),
            both_right=int(((difference == 0) & (a > 0)).sum()),
            both_wrong=int(((difference == 0) & (a <= 0)).sum()),
            p_value=clustered_p_value(difference, clusters, seed=seed),
            graded=not (is_binary(a) and is_binary(b)), clustered=True,
        )
    if not (is_binary(a_correct) and is_binary(b_correct)):
        return _graded_comparison(a_correct, b_correct, seed=seed)
    a = np.asarray(a_correct, dtype=float).astype(bool)
    b = np.asarray(b_correct, dtype=float).astype(bool)
    fixed, broken = int((~a & b).sum()), int((a & ~b).sum())
    return PairedComparison(
        delta=paired_difference(a, b, seed=seed),
        fixed=fixed, broken=broken,
        both_right=int((a & b).sum()), both_wrong=int((~a & ~b).sum()),
        p_value=mcnemar_exact(fixed, broken),
    )


def _graded_comparison(a_scores: Sequence[float], b_scores: Sequence[float], *,
                       seed: int) -> PairedComparison:
    a, b = np.asarray(a_scores, dtype=float), np.asarray(b_scores, dtype=float)
    difference = b - a
    return PairedComparison(
        delta=paired_difference(a, b, seed=seed),
        fixed=int((difference > 0).sum()), broken=int((difference < 0).sum()),
        both_right=int((difference == 0).sum()), both_wrong=0,
        p_value=randomisation_p_value(difference, seed=seed), graded=True,
    )


def pair_by_id(
    a: Mapping[str, float], b: Mapping[str, float]
) -> tuple[list[str], list[float], list[float]]:
    """The item ids both results share (in ``a``'s order) and their two score lists
    (correctness or graded scores)."""
    ids = [item for item in a if item in b]
    return ids, [a[i] for i in ids], [b[i] for i in ids]


def unpaired_difference(
    a: Sequence[float], b: Sequence[float], *, seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> Estimate:
    """``mean(b) - mean(a)`` for two independent samples, each resampled on its own."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not len(x) or not len(y):
        raise ValueError("cannot compare an empty sample")
    rng = np.random.default_rng(seed)
    samples = (y[rng.integers(0, len(y), (resamples, len(y)))].mean(axis=1)
               - x[rng.integers(0, len(x), (resamples, len(x)))].mean(axis=1))
    alpha = (1 - CONFIDENCE) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return Estimate(float(y.mean() - x.mean()), float(low), float(high), len(x) + len(y))


@dataclass(frozen=True)
class SeedSummary:
    """One metric of one approach over several seeds."""

    mean: float
    std: float
    """Sample standard deviation (0 with one seed)."""
    low: float
    high: float
    """Student-t 95% interval of the mean over seeds (the bootstrap CI with one seed)."""
    seeds: int


def seed_summary(values: Sequence[float], cis: Sequence[tuple[float, float]] = ()) -> SeedSummary:
    """Mean and spread of one metric over seeds. With a single seed its own CI (``cis``) is
    the interval, since there is no spread between seeds to estimate."""
    from scipy import stats

    data = np.asarray(values, dtype=float)
    if not len(data):
        raise ValueError("no values to summarise")
    mean = float(data.mean())
    if len(data) == 1:
        low, high = cis[0] if cis else (mean, mean)
        return SeedSummary(mean, 0.0, float(low), float(high), 1)
    std = float(data.std(ddof=1))
    half = float(stats.t.ppf((1 + CONFIDENCE) / 2, len(data) - 1)) * std / math.sqrt(len(data))
    return SeedSummary(mean, std, mean - half, mean + half, len(data))


def tied_groups(
    intervals: Mapping[str, tuple[float, float, float]], *, higher_is_better: bool = True
) -> list[list[str]]:
    """Group candidates that are statistically tied on one metric.

    ``intervals`` maps a candidate to ``(value, low, high)``. Candidates are ranked by value;
    each group starts with the best remaining candidate (its leader) and takes every following
    candidate whose interval overlaps the leader's. Overlap is a conservative test (two
    95% intervals can overlap while the difference is significant), so "tied" means "not
    shown to differ", never "shown equal".
    """
    order = sorted(intervals, key=lambda name: intervals[name][0], reverse=higher_is_better)
    groups: list[list[str]] = []
    for name in order:
        _, low, high = intervals[name]
        if groups:
            _, lead_low, lead_high = intervals[groups[-1][0]]
            if intervals_overlap((low, high), (lead_low, lead_high)):
                groups[-1].append(name)
                continue
        groups.append([name])
    return groups


def intervals_overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two ``(low, high)`` intervals share a point (the test ``tied_groups`` applies).

    Overlapping 95% intervals do not mean "no significant difference": the test is
    conservative (Schenker & Gentleman, 2001, "On Judging the Significance of Differences by
    Examining the Overlap Between Confidence Intervals"), so prefer a paired test when the
    items are shared (:func:`compare_by_id`)."""
    return a[0] <= b[1] and b[0] <= a[1]


def compare_by_id(
    a: Mapping[str, float], b: Mapping[str, float], *, seed: int = 0,
    draws: tuple[Mapping[str, object] | None, Mapping[str, object] | None] = (None, None),
) -> PairedComparison | None:
    """B against A on the item ids both scored (:func:`pair_by_id`, then
    :func:`paired_comparison`); ``None`` when they share no item. ``draws`` gives, for A and
    for B, the draw each item was answered with (few-shot demonstrations), if any: items are
    then clustered by the pair of draws (pairs within draw)."""
    ids, a_correct, b_correct = pair_by_id(a, b)
    if not ids:
        return None
    clusters = None
    if any(draws):
        clusters = [tuple((side or {}).get(i) for side in draws) for i in ids]
    return paired_comparison(a_correct, b_correct, seed=seed, clusters=clusters)
