"""Scores with uncertainty: accuracy and macro-F1 with percentile-bootstrap 95% CIs.

The bootstrap (Efron & Tibshirani, 1993) resamples evaluation items with replacement, seeded,
so an interval is reproducible. Paired comparisons resample the same item indices for both
candidates (Koehn, 2004, "Statistical significance tests for machine translation evaluation").

Items answered under different draws of something random (few-shot demonstrations: each item
is answered with one of several draws) are not independent: items of one draw share its luck.
Their means get a two-stage (hierarchical) bootstrap, draws resampled first, then items within
each resampled draw (Davison & Hinkley, 1997, "Bootstrap Methods and their Application",
section 3.8; Field & Welsh, 2007, "Bootstrapping clustered data"), so the interval includes
the variance between draws, which an item bootstrap leaves out: few-shot's accuracy over three
draws of its demonstrations spread seven times wider than one run's item interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval and sample size."""

    value: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def _resample_indices(n: int, seed: int, resamples: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> Estimate:
    """Percentile bootstrap of ``statistic``, which maps index arrays of shape (r, n) to (r,).

    The point estimate is the statistic on the original sample (``np.arange(n)``).
    """
    if n == 0:
        raise ValueError("cannot estimate a score from zero items")
    value = float(statistic(np.arange(n)[None, :])[0])
    samples = statistic(_resample_indices(n, seed, resamples))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return Estimate(value, float(low), float(high), n)


def clustered_mean(
    values: Sequence[float], clusters: Sequence[object], *, seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES, confidence: float = CONFIDENCE,
) -> Estimate:
    """Mean of ``values`` with a two-stage bootstrap CI: the clusters (draws, seeds) are
    resampled with replacement, then the items of each resampled cluster (module docstring).
    The point estimate is the mean over all items; with one cluster it is the item bootstrap."""
    data = np.asarray(values, dtype=float)
    if len(data) == 0:
        raise ValueError("cannot estimate a score from zero items")
    if len(data) != len(clusters):
        raise ValueError(f"{len(data)} values but {len(clusters)} cluster labels")
    if len(set(clusters)) == 1:
        return bootstrap(lambda idx: data[idx].mean(axis=1), len(data), seed=seed,
                         resamples=resamples, confidence=confidence)
    samples = clustered_resamples(data, clusters, seed=seed, resamples=resamples)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return Estimate(float(data.mean()), float(low), float(high), len(data))


def clustered_resamples(values: Sequence[float], clusters: Sequence[object], *,
                        seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES) -> np.ndarray:
    """``resamples`` two-stage bootstrap means of ``values`` (:func:`clustered_mean`)."""
    data = np.asarray(values, dtype=float)
    groups = [data[[i for i, c in enumerate(clusters) if c == label]]
              for label in dict.fromkeys(clusters)]
    rng = np.random.default_rng(seed)
    picked = rng.integers(0, len(groups), size=(resamples, len(groups)))
    sums, counts = np.zeros(resamples), np.zeros(resamples)
    for slot in range(len(groups)):  # each slot of a resample: one cluster, its items resampled
        for label, group in enumerate(groups):
            chosen = picked[:, slot] == label
            if chosen.any():
                draws = group[rng.integers(0, len(group), size=(int(chosen.sum()), len(group)))]
                sums[chosen] += draws.sum(axis=1)
                counts[chosen] += len(group)
    return sums / counts


def clustered_p_value(differences: Sequence[float], clusters: Sequence[object], *,
                      seed: int = 0) -> float:
    """Two-sided p-value of "the mean difference is 0" from the two-stage bootstrap: twice
    the smaller share of resampled means on either side of 0, ``(hits + 1) / (resamples +
    1)``, so that p < 0.05 when 0 lies outside the 95% interval of :func:`clustered_mean`."""
    samples = clustered_resamples(differences, clusters, seed=seed)
    tail = min(int((samples <= 0).sum()), int((samples >= 0).sum()))
    return min(1.0, 2 * (tail + 1) / (len(samples) + 1))


def accuracy(correct: Sequence[bool] | Sequence[float], *, seed: int = 0,
             clusters: Sequence[object] | None = None) -> Estimate:
    """Share of correct items with a bootstrap CI; two-stage when the items come in
    ``clusters`` (one label per item: the draw it was answered with, :func:`clustered_mean`)."""
    hits = np.asarray(correct, dtype=float)
    if clusters is not None:
        return clustered_mean(hits, clusters, seed=seed)
    return bootstrap(lambda idx: hits[idx].mean(axis=1), len(hits), seed=seed)


def mean(values: Sequence[float], *, seed: int = 0,
         clusters: Sequence[object] | None = None) -> Estimate:
    """Mean of per-item scores (token F1, latency...) with a bootstrap CI (two-stage over
    ``clusters`` when given, as :func:`accuracy`)."""
    return accuracy([float(v) for v in values], seed=seed, clusters=clusters)


def macro_f1(
    predictions: Sequence[str | None], references: Sequence[str], labels: Sequence[str],
    *, seed: int = 0,
) -> Estimate:
    """Unweighted mean of per-label F1 (a prediction of ``None`` counts as wrong for every label).

    A label absent from both predictions and references in a resample scores F1 = 0, as in
    scikit-learn's ``zero_division=0``.
    """
    index = {label: k for k, label in enumerate(labels)}
    predicted = np.array([index.get(p, -1) if p is not None else -1 for p in predictions])
    reference = np.array([index[r] for r in references])

    def statistic(idx: np.ndarray) -> np.ndarray:
        p, r = predicted[idx], reference[idx]
        scores = []
        for k in range(len(labels)):
            tp = ((p == k) & (r == k)).sum(axis=1)
            fp = ((p == k) & (r != k)).sum(axis=1)
            fn = ((p != k) & (r == k)).sum(axis=1)
            denominator = 2 * tp + fp + fn
            scores.append(np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0))
        return np.mean(scores, axis=0)

    return bootstrap(statistic, len(reference), seed=seed)


def per_class_accuracy(
    predictions: Sequence[str | None], references: Sequence[str], labels: Sequence[str],
    *, seed: int = 0,
) -> dict[str, Estimate]:
    """Recall of each label (accuracy on the items whose reference is that label)."""
    result = {}
    for label in labels:
        hits = [p == r for p, r in zip(predictions, references, strict=True) if r == label]
        if hits:
            result[label] = accuracy(hits, seed=seed)
    return result


def paired_difference(
    a: Sequence[float], b: Sequence[float], *, seed: int = 0,
    clusters: Sequence[object] | None = None,
) -> Estimate:
    """Mean of ``b - a`` over the same items, with a paired-bootstrap CI (two-stage when the
    items come in ``clusters``: pairs stay pairs, resampled within their draw)."""
    delta = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    if clusters is not None:
        return clustered_mean(delta, clusters, seed=seed)
    return bootstrap(lambda idx: delta[idx].mean(axis=1), len(delta), seed=seed)


def percentile(values: Sequence[float], q: float, *, seed: int = 0) -> Estimate:
    """The ``q``-th percentile (0-100) of ``values`` (latencies...) with a bootstrap CI.

    Tail percentiles of small samples have wide intervals; the CI says how wide."""
    data = np.asarray(values, dtype=float)
    return bootstrap(lambda idx: np.percentile(data[idx], q, axis=1), len(data), seed=seed)


def ratio(
    numerator: Sequence[float], denominator: Sequence[float],
    statistic: Callable[[np.ndarray], np.ndarray], *, seed: int = 0,
) -> Estimate:
    """``statistic(numerator) / statistic(denominator)`` (a speedup: the teacher's median
    latency over the student's) with a bootstrap CI: paired when both samples have one value
    per item, else each side resampled on its own. ``statistic`` maps an (r, n) array to r
    values (``lambda v: np.median(v, axis=1)``)."""
    top, bottom = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    if len(top) == len(bottom):
        return bootstrap(lambda idx: statistic(top[idx]) / statistic(bottom[idx]), len(top),
                         seed=seed)
    own = _resample_indices(len(bottom), seed + 1, BOOTSTRAP_RESAMPLES)

    def statistic_ratio(idx: np.ndarray) -> np.ndarray:
        rows = bottom[None] if len(idx) == 1 else bottom[own]  # one row: the point estimate
        return statistic(top[idx]) / statistic(rows)

    return bootstrap(statistic_ratio, len(top), seed=seed)
