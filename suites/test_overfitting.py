"""Overfitting: what the training curves say, train vs eval accuracy, and data efficiency.

- The verdict (ok / overfit / underfit / too-short / no-training) is read from the stored
  loss curves by a stated rule (``harness.measure.overfitting.VERDICT_RULE``, stored with it).
- Train vs eval accuracy on equal-size samples: a large gap means memorisation.
- ``--data-sizes 64,256,1024`` trains the approach again at each size and records accuracy
  against the number of training examples ("how many examples do I need?").
"""

import pytest

from harness.measure.compare import unpaired_difference
from harness.measure.evaluate import score_primary
from harness.measure.metrics import accuracy
from harness.measure.overfitting import VERDICT_CODES, VERDICT_RULE, read_curves
from harness.runner.session import Recorder

GAP_ITEMS = 100
"""Items per split for the train/eval accuracy gap (fewer if a split is smaller)."""


def last_stage(points):
    """The points of the last training stage: a composition (``lora+dpo``) logs one curve per
    stage, each starting again from step 1."""
    start = 0
    for i in range(1, len(points)):
        if points[i][0] < points[i - 1][0]:
            start = i
    return points[start:]


def loss_curve_name(names_with_validation):
    """``loss`` (supervised and DPO training), else another validated loss curve (the reward
    model of ``rlhf``: its RL stage has no held-out loss)."""
    if "loss" in names_with_validation:
        return "loss"
    losses = sorted(n for n in names_with_validation if n.endswith("loss"))
    return losses[0] if losses else "loss"


def test_loss_curves(candidate, run, tunebench, record):
    rows = tunebench.store.query(
        "SELECT step, split, name, value FROM curves WHERE run_id = ? ORDER BY id", (run.id,))
    curve = loss_curve_name({r["name"] for r in rows if r["split"] == "validation"})
    points = {split: last_stage([(r["step"], r["value"]) for r in rows
                                 if r["split"] == split and r["name"] == curve])
              for split in ("train", "validation")}
    train, validation = points["train"], points["validation"]
    reading = read_curves(train, validation)
    record.metric("overfit_verdict", VERDICT_CODES[reading.verdict], verdict=reading.verdict,
                  rule=VERDICT_RULE, curve=curve)
    for name, value in reading.as_dict().items():
        if isinstance(value, (int, float)) and name != "verdict":
            record.metric(name, value)

    assert reading.verdict in VERDICT_CODES
    if tunebench.trains(run.approach):
        assert validation, "a trained candidate must have left a validation curve"
        assert reading.best_validation_loss <= reading.final_validation_loss
        assert reading.best_step <= reading.final_step
    else:
        assert reading.verdict == "no-training"


def test_train_eval_gap(candidate, run, task, task_data, record, run_seed):
    kinds = {e.meta.get("kind") for e in task_data.eval}
    train = [e for e in task_data.train if e.meta.get("kind") in kinds]  # same kind of item
    n = min(len(train), len(task_data.eval), GAP_ITEMS)
    if n == 0:
        pytest.skip(f"task {task_data.name!r} has no training items like its eval items")
    train_hits = [r["correct"] for r in score_primary(candidate, task, train[:n])]
    eval_hits = [r["correct"] for r in score_primary(candidate, task, task_data.eval[:n],
                                                     cache=run.scored)]
    train_acc = accuracy(train_hits, seed=run_seed)
    eval_acc = accuracy(eval_hits, seed=run_seed)
    gap = unpaired_difference(eval_hits, train_hits, seed=run_seed)
    record.metric("train_accuracy", train_acc)
    record.metric("eval_accuracy_same_n", eval_acc)
    record.metric("train_eval_gap", gap)

    assert len(train_hits) == len(eval_hits) == n
    assert abs(gap.value - (train_acc.value - eval_acc.value)) < 1e-9
    assert gap.low <= gap.value <= gap.high


def test_data_efficiency(cell, tunebench, task, record):
    sizes = tunebench.options.data_sizes
    if not sizes:
        pytest.skip("pass --data-sizes 64,256,1024 to measure accuracy against training size")
    if not tunebench.trains(cell.approach):
        pytest.skip(f"{cell.approach} trains nothing: its accuracy does not depend on data size")
    points = []
    for size in sorted(sizes):
        with tunebench.open_run(cell.approach, cell.seed, train_size=size,
                                point=cell.point) as sized:
            data = tunebench.task_data(cell.seed, size)
            rows = score_primary(sized.candidate, task, data.eval)
            acc = accuracy([r["correct"] for r in rows], seed=cell.seed)
            Recorder(tunebench, sized, "accuracy").metric("primary_accuracy", acc)
            record.metric(f"data_efficiency[{size}]", acc,
                          train_examples=size, run_id=sized.id)
            points.append((size, len(data.train), acc))

    assert [trained for _, trained, _ in points] == sorted(sizes)
    assert all(0 <= acc.value <= 1 and acc.low <= acc.value <= acc.high for *_, acc in points)
