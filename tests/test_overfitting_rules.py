"""The overfitting verdict rule on curves whose answer is known."""

import pytest

from harness.measure.overfitting import VERDICT_CODES, VERDICT_RULE, read_curves

TRAIN = [(10, 2.0), (20, 1.2), (30, 0.8), (40, 0.5)]


@pytest.mark.parametrize(("validation", "verdict"), [
    ([(10, 1.5), (20, 1.0), (30, 0.95), (40, 0.94)], "ok"),
    ([(10, 1.5), (20, 0.9), (30, 1.0), (40, 1.1)], "overfit"),
    ([(10, 1.5), (20, 0.9), (30, 0.91), (40, 0.905)], "ok"),  # tiny wiggle: no trend
    ([(10, 1.99), (20, 1.95), (30, 1.9), (40, 1.89)], "underfit"),  # barely below the start
    ([(10, 1.5), (20, 1.2), (30, 1.0), (40, 0.8)], "underfit"),  # still falling fast
    ([(10, 0.05), (20, 0.03), (30, 0.027), (40, 0.025)], "ok"),  # flat near zero: converged
    # memorised, then one dip at the end (control-overfit on the embedded model): the
    # generalization loss (Prechelt) is 5x, so overfit, not underfit
    ([(4, 0.23), (8, 0.26), (12, 0.35), (16, 0.32), (20, 0.56), (24, 0.84), (28, 1.03),
      (32, 1.16), (36, 1.20), (40, 1.15)], "overfit"),
    ([(10, 1.5), (20, 0.9), (30, 1.05), (40, 1.02)], "overfit"),  # 13% above its minimum
    ([(40, 0.9)], "too-short"),
    ([], "no-training"),
])
def test_verdicts(validation, verdict):
    reading = read_curves(TRAIN, validation)
    assert reading.verdict == verdict
    assert verdict in VERDICT_CODES and verdict in VERDICT_RULE


def test_reading_numbers():
    reading = read_curves(TRAIN, [(10, 1.5), (20, 0.9), (30, 1.0), (40, 1.1)])
    assert reading.best_step == 20 and reading.final_step == 40
    assert reading.best_validation_loss == 0.9 and reading.final_validation_loss == 1.1
    assert reading.gap == pytest.approx(1.1 - 0.5)
    assert reading.rising_evaluations == 2 and reading.evaluations == 4
