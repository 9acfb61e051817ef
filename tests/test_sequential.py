"""Anytime-valid confidence sequences: coverage under optional stopping, against a naive
bootstrap re-checked after every chunk, and the interval's algebra against a test inversion."""

from __future__ import annotations

import numpy as np
import pytest

from harness.measure.sequential import difference_sequence, mean_sequence, sequence_bounds

ALPHA = 0.05
N = 500
CHUNK = 25
STREAMS = 10_000
HALF_WIDTH = 0.05
LOOKS = np.arange(CHUNK, N + 1, CHUNK)  # items scored at each look: 25, 50, ..., 500


def _population(name: str) -> np.ndarray:
    """N items of a fixed eval set: exact Bernoulli shares, or graded scores in [0, 1]."""
    if name.startswith("bernoulli"):
        return (np.arange(N) < round(float(name.split("-")[1]) * N)).astype(float)
    return np.random.default_rng(7).beta(2.0, 5.0, size=N)


def _first_stop(narrow: np.ndarray, miss: np.ndarray) -> np.ndarray:
    """Index of the look where the adversary stops: the first one narrow enough or wrong,
    else the last (all N items scored)."""
    stop = narrow | miss
    return np.where(stop.any(axis=1), np.argmax(stop, axis=1), len(LOOKS) - 1)


def _naive_bootstrap_bounds(streams: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile-bootstrap CIs of 0/1 scores at each look, 200 resamples.

    For k hits out of n the bootstrap mean is exactly Binomial(n, k / n) / n, so that is
    sampled. The resamples are drawn once per (n, k), as a seeded bootstrap (like
    ``metrics.bootstrap``) gives the same interval for the same data."""
    rng = np.random.default_rng(seed)
    hits = np.cumsum(streams, axis=1)[:, LOOKS - 1].astype(int)  # (streams, looks)
    low, high = np.empty(hits.shape), np.empty(hits.shape)
    for look, n in enumerate(LOOKS):
        draws = rng.binomial(n, np.arange(n + 1)[:, None] / n, size=(n + 1, 200)) / n
        table = np.quantile(draws, [ALPHA / 2, 1 - ALPHA / 2], axis=1)  # (2, k)
        low[:, look], high[:, look] = table[0, hits[:, look]], table[1, hits[:, look]]
    return low, high


@pytest.mark.parametrize("name", ["bernoulli-0.5", "bernoulli-0.9", "bernoulli-0.98", "beta"])
def test_optional_stopping_keeps_coverage_and_the_naive_bootstrap_loses_it(name: str) -> None:
    """10,000 seeded streams, each a random order of the same N = 500 items; a look after
    every 25 items; the adversary stops at the first look where the half-width is <= 0.05 or
    the interval excludes the population mean, else at N. Miscoverage at the stopping time,
    measured (CS without replacement; naive = 95% percentile bootstrap, 200 resamples):

        population       CS      CS wrong at any look   naive bootstrap
        Bernoulli 0.5    0.0074  0.0075                 0.1566
        Bernoulli 0.9    0.0039  0.0114                 0.1666
        Bernoulli 0.98   0.0000  0.0073                 0.6075
        Beta(2, 5)       0.0000  0.0004                 (not run: graded scores)

    (The i.i.d. form of the CS on the same streams: 0.0039, 0.0022, 0.0000, 0.0000.) The naive
    interval is fine at one fixed n (0.0325 at n = 100 for p = 0.5); peeking breaks it.
    Mean n at which the CS's half-width first reaches 0.05: 250 for p = 0.9, 447 for p = 0.5
    (i.i.d. form: 427, and only 0.2% of p = 0.5 streams get there before 500).
    """
    population = _population(name)
    truth = population.mean()
    rng = np.random.default_rng(20240)
    streams = rng.permuted(np.tile(population, (STREAMS, 1)), axis=1)

    low, high = sequence_bounds(streams, population=N, alpha=ALPHA)
    low, high = low[:, LOOKS - 1], high[:, LOOKS - 1]
    miss = (low > truth) | (high < truth)
    stop = _first_stop((high - low) / 2 <= HALF_WIDTH, miss)
    rows = np.arange(STREAMS)
    assert miss[rows, stop].mean() <= ALPHA
    # Stronger: nested intervals, so this is the share wrong at some look, whatever the rule.
    assert miss.any(axis=1).mean() <= ALPHA
    # Without replacement, all N items scored pin the mean (up to rounding) on every stream
    # the CS never excluded it from.
    kept = ~miss[:, -1]
    assert np.all(np.abs(low[kept, -1] - truth) < 1e-9)
    assert np.all(np.abs(high[kept, -1] - truth) < 1e-9)

    if name.startswith("bernoulli"):
        naive_low, naive_high = _naive_bootstrap_bounds(streams, seed=1)
        naive_miss = (naive_low > truth) | (naive_high < truth)
        naive_stop = _first_stop((naive_high - naive_low) / 2 <= HALF_WIDTH, naive_miss)
        assert naive_miss[rows, naive_stop].mean() > 2 * ALPHA


def test_empirical_bernstein_stops_sooner_on_a_lower_variance_population() -> None:
    """A Hoeffding CS would stop at the same n for p = 0.5 and p = 0.9; this one adapts to
    the variance (measured mean stop: 250 items for p = 0.9, 447 for p = 0.5)."""
    rng = np.random.default_rng(3)
    mean_stop = {}
    for name in ("bernoulli-0.5", "bernoulli-0.9"):
        streams = rng.permuted(np.tile(_population(name), (1000, 1)), axis=1)
        low, high = sequence_bounds(streams, population=N)
        narrow = (high - low)[:, LOOKS - 1] / 2 <= HALF_WIDTH
        mean_stop[name] = LOOKS[_first_stop(narrow, np.zeros_like(narrow))].mean()
    assert mean_stop["bernoulli-0.9"] < 0.7 * mean_stop["bernoulli-0.5"] < 0.7 * N


def _inverted_test(x: np.ndarray, population: int | None, means: np.ndarray) -> np.ndarray:
    """Whether each candidate mean m survives every time so far, shape (t, len(means)): the
    papers' test |sum lambda_i (x_i - mu_i(m))| <= log(2/alpha) + sum v_i psi_E(lambda_i),
    mu_i(m) = m i.i.d. or (N m - S_{i-1}) / (N - i + 1) without replacement, and m possible
    given what was seen. A loop over items, one m at a time in effect: no closed form."""
    level = np.log(2 / ALPHA)
    mean, var, total = 0.5, 0.25, 0.0
    process, penalty = np.zeros_like(means), 0.0
    alive, survived = (means >= 0) & (means <= 1), []
    for i, value in enumerate(x, start=1):
        bet = min(np.sqrt(2 * level / (var * i * np.log(1 + i))), 0.5)
        if population is None:
            conditional = means
        else:
            conditional = (population * means - total) / (population - i + 1)
        process += bet * (value - conditional)
        penalty += 4 * (value - mean) ** 2 * (-np.log(1 - bet) - bet) / 4
        total += value
        mean = (0.5 + total) / (i + 1)
        var = (var * i + (value - mean) ** 2) / (i + 1)
        alive &= np.abs(process) <= level + penalty
        if population is not None:  # what the unseen items add up to lies in [0, N - i]
            alive &= (population * means >= total) & (population * means <= total + population - i)
        survived.append(alive.copy())
    return np.array(survived)


@pytest.mark.parametrize("population", [None, 300])
def test_closed_form_matches_the_test_inversion(population: int | None) -> None:
    """The returned bounds are the edges of the set of means the test keeps, to 1e-7."""
    x = np.random.default_rng(5).beta(0.7, 0.9, size=300)
    low, high = sequence_bounds(x, population=population)
    delta = 1e-7
    middle = (low + high) / 2  # at t = N without replacement the interval is a point
    edges = np.concatenate([low - delta, np.minimum(low + delta, middle),
                            np.maximum(high - delta, middle), high + delta])
    survived = _inverted_test(x, population, edges).reshape(len(x), 4, len(x))
    times = np.arange(len(x))
    inside = survived[times, 1, times] & survived[times, 2, times]
    outside = survived[times, 0, times] | survived[times, 3, times]
    assert inside.all() and not outside.any()


def test_without_replacement_is_narrower_and_pins_the_mean_at_the_end() -> None:
    population = np.random.default_rng(11).beta(2, 2, size=300)
    order = np.random.default_rng(12).permutation(population)
    wor_low, wor_high = sequence_bounds(order, population=300)
    iid_low, iid_high = sequence_bounds(order)
    # Halfway the certain bounds [S_t / N, (S_t + N - t) / N] are 0.5 wide: the betting part.
    assert wor_high[149] - wor_low[149] < 0.9 * (iid_high[149] - iid_low[149]) < 0.45
    final = mean_sequence(order, population=300)
    assert final.low <= population.mean() <= final.high
    assert final.high - final.low < 1e-9 < mean_sequence(order).high - mean_sequence(order).low


def test_the_interval_narrows_as_items_come_in() -> None:
    x = np.random.default_rng(2).binomial(1, 0.7, size=400).astype(float)
    low, high = sequence_bounds(x)
    width = high - low
    assert np.all(np.diff(width) <= 0)
    assert width[399] < 0.6 * width[99] and width[99] < 0.6 * width[24]
    estimate = mean_sequence(x[:100])
    assert (estimate.value, estimate.n) == (pytest.approx(x[:100].mean()), 100)
    assert estimate.low < estimate.value < estimate.high


def test_streams_are_computed_independently() -> None:
    batch = np.random.default_rng(4).random((3, 50))
    low, high = sequence_bounds(batch, population=80)
    alone_low, alone_high = sequence_bounds(batch[1], population=80)
    np.testing.assert_allclose(low[1], alone_low)
    np.testing.assert_allclose(high[1], alone_high)


def test_bounds_rescale_like_prescaled_values() -> None:
    points = np.random.default_rng(6).uniform(0, 100, size=60)
    raw = mean_sequence(points, bounds=(0.0, 100.0), population=90)
    scaled = mean_sequence(points / 100, population=90)
    assert raw.value == pytest.approx(100 * scaled.value)
    assert raw.low == pytest.approx(100 * scaled.low)
    assert raw.high == pytest.approx(100 * scaled.high)


def test_paired_difference() -> None:
    a = np.random.default_rng(8).uniform(0, 10, size=80)
    same = difference_sequence(a, a, bounds=(0.0, 10.0))
    assert same.value == 0 and same.low < 0 < same.high and same.n == 80
    better = difference_sequence(np.ones(200), np.zeros(200))
    assert 0.5 < better.low < better.high == 1.0
    b = np.random.default_rng(9).uniform(0, 10, size=80)
    direct = mean_sequence(a - b, bounds=(-10.0, 10.0), population=100)
    paired = difference_sequence(a, b, bounds=(0.0, 10.0), population=100)
    assert (paired.low, paired.high) == (pytest.approx(direct.low), pytest.approx(direct.high))


@pytest.mark.parametrize(("call", "message"), [
    (lambda: mean_sequence([]), "zero values"),
    (lambda: mean_sequence([0.2, 1.5]), "within bounds"),
    (lambda: mean_sequence([3.0], bounds=(0.0, 2.0)), "within bounds"),
    (lambda: mean_sequence([0.1, 0.2, 0.3], population=2), "smaller than"),
    (lambda: mean_sequence([0.5], alpha=0.0), "alpha"),
    (lambda: mean_sequence([0.5], alpha=1.0), "alpha"),
    (lambda: mean_sequence([1.0], bounds=(1.0, 1.0)), "low < high"),
    (lambda: difference_sequence([0.1, 0.2], [0.3]), "equal lengths"),
    (lambda: difference_sequence([], []), "zero a"),
    (lambda: sequence_bounds(np.array([[0.5, 1.2]])), r"\[0, 1\]"),
    (lambda: sequence_bounds(np.array([[0.5, np.nan]])), r"\[0, 1\]"),
    (lambda: sequence_bounds(np.array([[0.5, 0.4]]), population=1), "smaller than"),
])
def test_bad_input_is_refused(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
