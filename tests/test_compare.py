"""Statistics of comparisons against known cases: McNemar, coverage, pairing, seeds, ties."""

import numpy as np
import pytest

from harness.measure.compare import (
    mcnemar_exact,
    pair_by_id,
    paired_comparison,
    seed_summary,
    tied_groups,
    unpaired_difference,
)
from harness.measure.metrics import accuracy, bootstrap, percentile


def test_mcnemar_exact_matches_hand_computed_tables():
    # 1 fixed, 9 broken: P(X <= 1 | Bin(10, 1/2)) = (1 + 10) / 1024, two-sided doubles it.
    assert mcnemar_exact(1, 9) == pytest.approx(22 / 1024)
    assert mcnemar_exact(9, 1) == pytest.approx(22 / 1024)
    # 2 vs 8: 2 * (1 + 10 + 45) / 1024
    assert mcnemar_exact(2, 8) == pytest.approx(112 / 1024)
    assert mcnemar_exact(5, 5) == 1.0 and mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 20) == pytest.approx(2 / 2**20)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


def test_paired_comparison_counts_flips():
    before = [True, True, False, False, True, False]
    after = [True, False, True, True, True, False]
    result = paired_comparison(before, after)
    assert (result.fixed, result.broken, result.both_right, result.both_wrong) == (2, 1, 2, 1)
    assert result.n == 6
    assert result.delta.value == pytest.approx(1 / 6)
    assert result.p_value == pytest.approx(mcnemar_exact(2, 1))
    with pytest.raises(ValueError, match="same items"):
        paired_comparison([True], [True, False])


def test_pairing_narrows_the_interval_when_items_are_shared():
    rng = np.random.default_rng(0)
    easy = rng.random(400) < 0.6  # both candidates mostly agree item by item
    a = easy.copy()
    b = easy.copy()
    b[:40] = True  # b fixes some items a misses (and is otherwise identical)
    paired = paired_comparison(a, b).delta
    unpaired = unpaired_difference(a.astype(float), b.astype(float))
    assert paired.value == pytest.approx(unpaired.value)
    assert paired.high - paired.low < 0.5 * (unpaired.high - unpaired.low)
    assert paired.low > 0  # the paired test sees the improvement the unpaired one blurs


def test_bootstrap_interval_covers_the_true_rate_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    truth, hits = 0.3, 0
    trials = 200
    for trial in range(trials):
        sample = rng.random(150) < truth
        estimate = bootstrap(lambda idx, s=sample: s[idx].mean(axis=1), len(sample),
                             seed=trial, resamples=1000)
        hits += estimate.low <= truth <= estimate.high
    assert 0.89 <= hits / trials <= 0.99


def test_unpaired_difference_sign_and_interval():
    result = unpaired_difference([0, 0, 0, 1] * 25, [1, 1, 1, 0] * 25)
    assert result.value == pytest.approx(0.5)
    assert 0.3 < result.low < result.value < result.high < 0.7


def test_percentile_estimate():
    values = list(range(1, 101))
    median = percentile(values, 50)
    assert median.value == pytest.approx(50.5)
    assert median.low <= median.value <= median.high


def test_seed_summary_uses_student_t_over_seeds():
    summary = seed_summary([0.80, 0.82, 0.84])
    assert summary.mean == pytest.approx(0.82) and summary.std == pytest.approx(0.02)
    half = 4.302652729911275 * 0.02 / np.sqrt(3)  # t(0.975, df=2)
    assert summary.low == pytest.approx(0.82 - half) and summary.high == pytest.approx(0.82 + half)
    single = seed_summary([0.7], [(0.65, 0.75)])
    assert (single.low, single.high, single.std, single.seeds) == (0.65, 0.75, 0.0, 1)


def test_tied_groups_follow_interval_overlap():
    intervals = {
        "lora": (0.84, 0.81, 0.87),
        "qlora": (0.83, 0.80, 0.86),  # overlaps lora: tied
        "full-ft": (0.92, 0.89, 0.94),
        "zero-shot": (0.63, 0.59, 0.67),
    }
    assert tied_groups(intervals) == [["full-ft"], ["lora", "qlora"], ["zero-shot"]]
    latency = {"a": (10.0, 9.0, 11.0), "b": (30.0, 28.0, 32.0), "c": (10.5, 9.5, 11.5)}
    assert tied_groups(latency, higher_is_better=False) == [["a", "c"], ["b"]]


def test_pair_by_id_keeps_shared_items_in_order():
    ids, a, b = pair_by_id({"x": True, "y": False, "z": True}, {"z": False, "x": True})
    assert ids == ["x", "z"] and a == [True, True] and b == [True, False]


def test_accuracy_ci_contains_point():
    estimate = accuracy([True] * 30 + [False] * 10)
    assert estimate.low <= 0.75 <= estimate.high
