"""Statistics against hand-computed cases and synthetic coverage checks."""

import numpy as np
import pytest

from harness.measure.metrics import accuracy, macro_f1, paired_difference, per_class_accuracy


def test_accuracy_point_estimate_and_interval():
    estimate = accuracy([True] * 70 + [False] * 30, seed=1)
    assert estimate.value == pytest.approx(0.7)
    assert estimate.n == 100
    # Normal approximation: 0.7 +- 1.96 * sqrt(0.21 / 100) = [0.610, 0.790].
    assert estimate.low == pytest.approx(0.61, abs=0.02)
    assert estimate.high == pytest.approx(0.79, abs=0.02)


def test_bootstrap_is_reproducible_by_seed():
    hits = [True, False, True, True, False] * 10
    assert accuracy(hits, seed=3) == accuracy(hits, seed=3)
    assert accuracy(hits, seed=3) != accuracy(hits, seed=4)


def test_macro_f1_matches_hand_computation():
    references = ["pos", "pos", "pos", "neg", "neg", "neg"]
    predictions = ["pos", "pos", "neg", "neg", "pos", None]
    # pos: tp=2 fp=1 fn=1 -> F1 = 4/6; neg: tp=1 fp=1 fn=2 -> F1 = 2/5.
    estimate = macro_f1(predictions, references, ["neg", "pos"])
    assert estimate.value == pytest.approx((4 / 6 + 2 / 5) / 2)
    assert estimate.low <= estimate.value <= estimate.high


def test_macro_f1_of_a_constant_predictor_is_below_accuracy():
    references = ["a"] * 50 + ["b"] * 50
    estimate = macro_f1(["a"] * 100, references, ["a", "b"])
    assert estimate.value == pytest.approx(1 / 3)


def test_per_class_accuracy_is_recall():
    scores = per_class_accuracy(["a", "b", "b", "b"], ["a", "a", "b", "b"], ["a", "b"])
    assert scores["a"].value == 0.5 and scores["b"].value == 1.0


def test_interval_covers_the_true_rate_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    covered = 0
    trials = 200
    for trial in range(trials):
        sample = rng.random(200) < 0.3
        estimate = accuracy(sample.tolist(), seed=trial)
        covered += estimate.low <= 0.3 <= estimate.high
    assert 0.89 <= covered / trials <= 0.99


def test_paired_difference_uses_item_pairs():
    a = [1, 0, 1, 0, 1, 0, 1, 0] * 10
    b = [1, 1, 1, 1, 1, 0, 1, 0] * 10
    estimate = paired_difference(a, b)
    assert estimate.value == pytest.approx(0.25)
    assert estimate.low > 0  # every pair moves the same way: clearly positive


def test_empty_input_is_an_error():
    with pytest.raises(ValueError, match="zero items"):
        accuracy([])


def test_ratio_is_paired_when_it_can_be():
    from harness.measure.metrics import ratio

    means = lambda v: v.mean(axis=1)  # noqa: E731
    paired = ratio([2.0, 2.2, 1.8], [1.0, 1.1, 0.9], means, seed=0)
    assert (paired.value, paired.low, paired.high) == pytest.approx((2.0, 2.0, 2.0))
    unpaired = ratio([2.0, 2.2, 1.8], [1.0, 1.1], means, seed=0)
    assert unpaired.value == pytest.approx(2.0 / 1.05)
    assert unpaired.low < unpaired.value < unpaired.high and unpaired.n == 3
