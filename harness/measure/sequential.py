"""Anytime-valid confidence sequences for scores checked while they are still coming in.

A candidate's evaluation items are scored in a seeded random order, in chunks, and after each
chunk the harness may stop. A fixed-n interval (the bootstrap of ``metrics``) re-checked after
every chunk is no longer a 95% interval: stopping when it looks good or bad ("peeking") makes
it miss far more often. A confidence sequence (CS) is a sequence of intervals C_1, C_2, ...
with P(the target lies in C_t for every t at once) >= 1 - alpha, so it stays valid at any
stopping time, whatever rule chose it.

The CS here is the predictable plug-in empirical-Bernstein CS (PrPl-EB) of Waudby-Smith &
Ramdas (2024), "Estimating means of bounded random variables by betting", JRSSB 86(1),
Theorem 2, in its sampling-without-replacement form from Waudby-Smith & Ramdas (2020),
"Confidence sequences for sampling without replacement", NeurIPS (its empirical-Bernstein CS
for WoR), checked against the authors' reference code (``confseq``, ``predmix.py``). For
x_1..x_t in [0, 1] and two-sided level alpha, with L = log(2 / alpha):

- mu_hat_i = (1/2 + sum_{j<=i} x_j) / (i + 1) and
  sigma2_hat_i = (1/4 + sum_{j<=i} (x_j - mu_hat_j)^2) / (i + 1) (mu_hat_0 = 1/2,
  sigma2_hat_0 = 1/4);
- the predictable bet lambda_i = min(sqrt(2 L / (sigma2_hat_{i-1} i log(1 + i))), c),
  c = 1/2 (a truncation the paper suggests, and its code's default);
- v_i = 4 (x_i - mu_hat_{i-1})^2 and psi_E(l) = (-log(1 - l) - l) / 4.

Under H0 "the mean is m" the process sum_i lambda_i (x_i - mu_i(m)) is checked against
L + sum_i v_i psi_E(lambda_i), on each side. With replacement mu_i(m) = m. Without
replacement from N items (target: the mean of all N), the conditional mean of the i-th draw
is mu_i(m) = (N m - S_{i-1}) / (N - i + 1), S_{i-1} = sum_{j<i} x_j, so the process is A - m B
with A = sum lambda_i (x_i + S_{i-1} / (N - i + 1)) and B = sum lambda_i N / (N - i + 1), and
the CS is A / B +- (L + sum v_i psi_E(lambda_i)) / B (the 2020 paper writes the weights as
1 + (i - 1) / (N - i + 1) = N / (N - i + 1)). With replacement B = sum lambda_i and
A = sum lambda_i x_i. Each interval is clipped to [0, 1]; without replacement it is also cut to
what the items seen so far allow for certain (the population mean lies in
[S_t / N, (S_t + N - t) / N]), which pins the mean exactly at t = N. Intersecting a CS over
time keeps it valid (both papers), so the interval at time t is the running intersection
(running max of lows, running min of highs). An empty intersection (low > high) can happen
only on the miscoverage event, of probability <= alpha; it is returned as is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.measure.metrics import Estimate

TRUNCATION = 0.5
# Floating-point slack on the certain bounds [S_t / N, (S_t + N - t) / N]: at t = N they meet,
# and a sum in another order may differ from the population mean in its last bits.
_SLACK = 1e-12


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")


def _check_population(population: int | None, n: int) -> None:
    if population is None:
        return
    if isinstance(population, bool) or not isinstance(population, (int, np.integer)):
        raise ValueError(f"population must be an integer or None, got {population!r}")
    if population < n:
        raise ValueError(f"population of {population} items is smaller than the {n} values "
                         "sampled from it without replacement")


def sequence_bounds(values: np.ndarray, *, population: int | None = None,
                    alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised core: values of shape (streams, t) in [0, 1]; returns (low, high), each of
    shape (streams, t): the CS (running intersection) after each item.

    Each row is one stream, in the order its items were scored. ``population`` is N when each
    row is a without-replacement sample of N items (the target is their mean), None for
    i.i.d. draws. A 1-D array is taken as one stream and answered with 1-D arrays. The maths
    is in the module docstring (Waudby-Smith & Ramdas, 2024, Theorem 2; 2020, NeurIPS).
    """
    _check_alpha(alpha)
    x = np.asarray(values, dtype=float)
    single = x.ndim == 1
    x = np.atleast_2d(x)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"values must have shape (streams, t) with t >= 1, got {x.shape}")
    if not np.all((x >= 0.0) & (x <= 1.0)):  # also catches NaN
        raise ValueError("values must lie in [0, 1]; rescale them first")
    t = x.shape[1]
    _check_population(population, t)
    i = np.arange(1, t + 1, dtype=float)
    log_term = np.log(2.0 / alpha)

    # In-place arithmetic on a few (streams, t) buffers: 10,000 streams of 500 items are
    # 40 MB an array, and allocating one is most of the cost.
    total = np.cumsum(x, axis=1)  # S_i
    before = total - x  # S_{i-1}
    work = np.add(total, 0.5)
    work /= i + 1.0  # mu_hat_i
    np.subtract(x, work, out=work)
    np.square(work, out=work)
    np.cumsum(work, axis=1, out=work)  # sum_{j<=i} (x_j - mu_hat_j)^2
    work[:, 1:] = work[:, :-1]
    work[:, 0] = 0.0
    work += 0.25
    work /= i  # sigma2_hat_{i-1}
    work *= i * np.log1p(i)
    np.divide(2.0 * log_term, work, out=work)
    np.sqrt(work, out=work)
    bet = np.minimum(work, TRUNCATION, out=work)  # lambda_i
    # v_i psi_E(lambda_i) = 4 (x_i - mu_hat_{i-1})^2 (-log(1 - lambda_i) - lambda_i) / 4,
    # with mu_hat_{i-1} = (1/2 + S_{i-1}) / i.
    penalty = np.add(before, 0.5)
    penalty /= i
    np.subtract(x, penalty, out=penalty)
    np.square(penalty, out=penalty)
    psi = np.negative(bet)
    np.log1p(psi, out=psi)
    np.negative(psi, out=psi)
    psi -= bet
    penalty *= psi
    np.cumsum(penalty, axis=1, out=penalty)

    centre = psi  # buffer reuse
    if population is None:
        np.multiply(bet, x, out=centre)  # A sums lambda_i x_i, B sums lambda_i
    else:
        remaining = population - i + 1.0  # N - i + 1
        np.divide(before, remaining, out=centre)
        centre += x
        centre *= bet  # A sums lambda_i (x_i + S_{i-1} / (N - i + 1))
        bet *= population / remaining  # B sums lambda_i N / (N - i + 1)
    np.cumsum(centre, axis=1, out=centre)
    b_sum = np.cumsum(bet, axis=1, out=bet)
    centre /= b_sum  # A / B
    radius = penalty
    radius += log_term
    radius /= b_sum
    low = np.subtract(centre, radius, out=before)
    high = np.add(centre, radius, out=centre)
    if population is not None:
        total /= population  # the certain bounds S_t / N and (S_t + N - t) / N
        np.maximum(low, total - _SLACK, out=low)
        total += (population - i) / population + _SLACK
        np.minimum(high, total, out=high)
    np.clip(low, 0.0, 1.0, out=low)
    np.clip(high, 0.0, 1.0, out=high)
    np.maximum.accumulate(low, axis=1, out=low)
    np.minimum.accumulate(high, axis=1, out=high)
    return (low[0], high[0]) if single else (low, high)


def _checked(values: Sequence[float], bounds: tuple[float, float], name: str) -> np.ndarray:
    lo, hi = bounds
    if not hi > lo:
        raise ValueError(f"bounds must satisfy low < high, got {bounds}")
    data = np.asarray(values, dtype=float)
    if data.ndim != 1:
        raise ValueError(f"{name} must be a flat sequence of numbers")
    if len(data) == 0:
        raise ValueError(f"cannot build a confidence sequence from zero {name}")
    if not np.all((data >= lo) & (data <= hi)):
        bad = data[~((data >= lo) & (data <= hi))][0]
        raise ValueError(f"{name} must lie within bounds {bounds}; found {bad}")
    return data


def mean_sequence(values: Sequence[float], *, population: int | None = None,
                  alpha: float = 0.05, bounds: tuple[float, float] = (0.0, 1.0)) -> Estimate:
    """Anytime-valid CS at the current time for the mean of values scored so far: value =
    the sample mean, low/high = the CS (running intersection), n = len(values). population: the
    eval set's size N when the values are a without-replacement sample of it (the target is
    then the mean over all N items); None for i.i.d. sampling.

    ``values`` must be in the order they were scored (the CS is a path, not a set). The CS is
    the PrPl-EB CS of Waudby-Smith & Ramdas (2024, JRSSB, Theorem 2), in its
    without-replacement form (Waudby-Smith & Ramdas, 2020, NeurIPS) when ``population`` is set.
    Values are rescaled from ``bounds`` to [0, 1] and the interval mapped back.
    """
    data = _checked(values, bounds, "values")
    lo, hi = float(bounds[0]), float(bounds[1])
    width = hi - lo
    scaled = np.clip((data - lo) / width, 0.0, 1.0)
    low, high = sequence_bounds(scaled, population=population, alpha=alpha)
    return Estimate(float(data.mean()), lo + width * float(low[-1]),
                    lo + width * float(high[-1]), len(data))


def difference_sequence(a: Sequence[float], b: Sequence[float], *, population: int | None = None,
                        alpha: float = 0.05, bounds: tuple[float, float] = (0.0, 1.0)) -> Estimate:
    """The same for the paired mean difference a - b on the same items (each difference lies in
    [lo - hi, hi - lo]; rescale it to [0, 1], run the CS, map back).

    ``a[k]`` and ``b[k]`` are two candidates' scores on the k-th item scored; with
    ``population`` the target is the mean difference over all N items.
    """
    first, second = _checked(a, bounds, "a"), _checked(b, bounds, "b")
    if len(first) != len(second):
        raise ValueError(f"paired scores need equal lengths, got {len(first)} and {len(second)}")
    span = float(bounds[1]) - float(bounds[0])
    diff = first - second
    scaled = np.clip((diff + span) / (2.0 * span), 0.0, 1.0)
    low, high = sequence_bounds(scaled, population=population, alpha=alpha)
    return Estimate(float(diff.mean()), -span + 2.0 * span * float(low[-1]),
                    -span + 2.0 * span * float(high[-1]), len(diff))
