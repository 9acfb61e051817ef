"""Reading training curves: the train/validation gap, the best step and a stated verdict.

The rule follows early stopping's reading of a validation curve (Prechelt, 1998, "Early
stopping - but when?"): validation loss that keeps rising after its minimum means the model
is fitting the training set at the expense of unseen data; validation loss that was still
falling fast when training stopped means more training would have helped. The rule is stored
with every verdict (``VERDICT_RULE``) so a reader never has to guess what "overfit" meant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

RISING_EVALUATIONS = 2
"""Consecutive validation evaluations with rising loss that count as a trend, not noise."""
OVERFIT_TOLERANCE = 0.02
"""Final validation loss must exceed its minimum by this relative margin to call overfitting."""
GENERALIZATION_LOSS = 0.10
"""Prechelt's generalization loss, ``last / lowest - 1``: above this the run overfit whatever
its last evaluations did (his GL criterion; a memorising run whose validation loss tripled
and then dipped once at the end was read as underfit without it: the control-overfit
control found this)."""
UNDERFIT_IMPROVEMENT = 0.10
"""Final validation loss above ``1 - this`` times the first logged training loss (the loss
near the start of training): training barely helped, underfit."""
STILL_LEARNING = 0.10
"""A last evaluation that still brought more than this fraction of the whole drop in loss
(from the first logged training loss): underfit. Relative to the drop, not to the loss
itself, so a curve flattening near zero is not called underfit."""

VERDICT_RULE = (
    "no-training: no validation curve was recorded. "
    "too-short: a single validation evaluation shows no trend. "
    f"overfit: validation loss rose at each of the last {RISING_EVALUATIONS} evaluations and "
    f"ends more than {OVERFIT_TOLERANCE:.0%} above its minimum, or ends more than "
    f"{GENERALIZATION_LOSS:.0%} above its minimum whatever the last evaluations did. "
    f"underfit: final validation loss is within {UNDERFIT_IMPROVEMENT:.0%} of the first logged "
    f"training loss (training barely reduced it), or the last evaluation still brought more "
    f"than {STILL_LEARNING:.0%} of the whole drop from that first loss (stopped while "
    "learning fast). "
    "ok: otherwise."
)
VERDICT_CODES = {"no-training": -2, "too-short": -1, "ok": 0, "underfit": 1, "overfit": 2}
"""Numeric codes, so the verdict can live in the metrics table (its name is in ``extra``)."""

Curve = Sequence[tuple[int, float]]
"""``(step, loss)`` points in step order."""


@dataclass(frozen=True)
class CurveReading:
    """What the loss curves of one training run say."""

    verdict: str
    final_train_loss: float | None
    final_validation_loss: float | None
    gap: float | None
    """Final validation loss minus final training loss."""
    best_step: int | None
    """Step of the lowest validation loss."""
    final_step: int | None
    best_validation_loss: float | None
    rising_evaluations: int
    """Evaluations at the end of training in a row at which validation loss rose."""
    evaluations: int

    def as_dict(self) -> dict[str, float | int | str | None]:
        return asdict(self)


def _rising_tail(losses: Sequence[float]) -> int:
    count = 0
    for before, after in zip(reversed(losses[:-1]), reversed(losses[1:]), strict=True):
        if after <= before:
            break
        count += 1
    return count


def read_curves(train: Curve, validation: Curve) -> CurveReading:
    """The verdict and the numbers behind it for one run's loss curves."""
    final_train = train[-1][1] if train else None
    if not validation:
        return CurveReading("no-training", final_train, None, None, None,
                            train[-1][0] if train else None, None, 0, 0)
    steps = [step for step, _ in validation]
    losses = [loss for _, loss in validation]
    best = min(range(len(losses)), key=losses.__getitem__)
    rising = _rising_tail(losses)
    last, lowest = losses[-1], losses[best]
    start = train[0][1] if train else losses[0]
    if len(losses) == 1:
        verdict = "too-short"
    elif (rising >= RISING_EVALUATIONS and last > lowest * (1 + OVERFIT_TOLERANCE)) or (
        last > lowest * (1 + GENERALIZATION_LOSS)
    ):
        verdict = "overfit"
    elif last > (1 - UNDERFIT_IMPROVEMENT) * start or (
        losses[-2] - last > STILL_LEARNING * (start - last)
    ):
        verdict = "underfit"
    else:
        verdict = "ok"
    return CurveReading(
        verdict=verdict,
        final_train_loss=final_train,
        final_validation_loss=last,
        gap=None if final_train is None else last - final_train,
        best_step=steps[best],
        final_step=max(steps[-1], train[-1][0] if train else 0),
        best_validation_loss=lowest,
        rising_evaluations=rising,
        evaluations=len(losses),
    )
