"""Overfitting: what the training curves say, train vs eval accuracy, and data efficiency.

- The verdict (ok / overfit / underfit / too-short / no-training) is read from the stored
  loss curves by a stated rule (``harness.measure.overfitting.VERDICT_RULE``, stored with it).
- Train vs eval accuracy on equal-size samples: a large gap means memorisation.
- ``--data-sizes 64,256,1024`` trains the approach again at each size and records accuracy
  against the number of training examples ("how many examples do I need?").
- ``--label-noise 0.1,0.2,0.4`` prepares the approach again with that share of its training
  answers corrupted (``harness.data.noise``; eval stays clean) and records accuracy and the
  paired drop against the clean candidate on the same eval items ("how much do bad labels
  hurt?"). Every approach runs: few-shot's demonstrations come from the corrupted split, and
  zero-shot's flat line is measured, not assumed. Each noisy candidate also looks for the
  corrupted items (``harness.measure.label_issues``, confident learning): the precision and
  recall of what it flags, against the injected noise, say how far "which of my examples
  look wrong?" can be trusted.
"""

import warnings

import pytest

from harness.data.noise import corrupted_ids
from harness.measure.compare import compare_by_id, unpaired_difference
from harness.measure.evaluate import primary_values, score_primary, tied_items
from harness.measure.label_issues import detection_hits, find_suspect_labels
from harness.measure.metrics import accuracy
from harness.measure.overfitting import VERDICT_CODES, VERDICT_RULE, read_curves
from harness.runner.session import Recorder

GAP_ITEMS = 100
"""Items per split for the train/eval accuracy gap (fewer if a split is smaller)."""
SUSPECTS_SHOWN = 50
"""Flagged training items stored per noisy run, least likely first."""


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


def test_train_eval_gap(candidate, run, task, task_data, tunebench, record, run_seed):
    kinds = {e.meta.get("kind") for e in task_data.eval}
    train = [e for e in task_data.train if e.meta.get("kind") in kinds]  # same kind of item
    n = min(len(train), len(task_data.eval), GAP_ITEMS)
    if n == 0:
        pytest.skip(f"task {task_data.name!r} has no training items like its eval items")
    headline = tunebench.headline_metric
    train_rows = score_primary(candidate, task, train[:n], headline=headline)
    eval_rows = score_primary(candidate, task, task_data.eval[:n], cache=run.scored,
                              headline=headline)
    train_hits, eval_hits = primary_values(train_rows, headline), primary_values(eval_rows,
                                                                                  headline)
    train_acc = accuracy(train_hits, seed=run_seed)
    eval_acc = accuracy(eval_hits, seed=run_seed)
    gap = unpaired_difference(eval_hits, train_hits, seed=run_seed)
    record.metric("train_accuracy", train_acc)
    record.metric("eval_accuracy_same_n", eval_acc)
    record.metric("train_eval_gap", gap)
    record.metric("tied_items", tied_items([*train_rows, *eval_rows]))

    assert len(train_hits) == len(eval_hits) == n
    assert abs(gap.value - (train_acc.value - eval_acc.value)) < 1e-9
    assert gap.low <= gap.value <= gap.high


def test_data_efficiency(cell, tunebench, task, record):
    sizes = tunebench.options.data_sizes
    if not sizes:
        pytest.skip("pass --data-sizes 64,256,1024 to measure accuracy against training size")
    if not tunebench.trains(cell.approach):
        pytest.skip(f"{cell.approach} trains nothing: its accuracy does not depend on data size")
    points, headline = [], tunebench.headline_metric  # accuracy, or e.g. f1 for free text
    for size in sorted(sizes):
        with tunebench.open_run(cell.approach, cell.seed, train_size=size,
                                point=cell.point) as sized:
            data = tunebench.task_data(cell.seed, size)
            rows = score_primary(sized.candidate, task, data.eval, headline=headline)
            acc = accuracy(primary_values(rows, headline), seed=cell.seed)
            Recorder(tunebench, sized, "accuracy").metric("primary_accuracy", acc,
                                                          metric=headline)
            record.metric(f"data_efficiency[{size}]", acc, metric=headline,
                          train_examples=size, run_id=sized.id)
            points.append((size, len(data.train), acc))

    assert [trained for _, trained, _ in points] == sorted(sizes)
    assert all(acc.low <= acc.value <= acc.high for *_, acc in points)


def noise_label(share):
    """A noise share as metric names carry it: ``0.1``, ``0``."""
    return f"{share:g}"


def record_detection(record, noisy, data, share, seed, in_sample):
    """How well the noisy candidate's suspect labels (:mod:`harness.measure.label_issues`)
    find the answers that were corrupted: precision and recall against the injected noise."""
    try:
        suspects = find_suspect_labels(noisy.candidate, data.train)
    except ValueError as error:  # e.g. too few items of a label for confident learning
        warnings.warn(f"noisy-label detector not scored at noise {share:g}: {error}",
                      stacklevel=2)
        return
    precision_hits, recall_hits = detection_hits(suspects, data.train)
    name, extra = noise_label(share), {"label_noise": share, "flagged": len(suspects),
                                       "run_id": noisy.id, "in_sample": in_sample}
    if precision_hits:
        record.metric(f"noise_detection_precision[{name}]",
                      accuracy(precision_hits, seed=seed), **extra)
    if recall_hits:
        record.metric(f"noise_detection_recall[{name}]", accuracy(recall_hits, seed=seed),
                      **extra)
    corrupted = set(corrupted_ids(data))  # "correct": the flag points at an injected error
    Recorder(record.session, noisy, "data_quality").examples(
        [s.row() | {"correct": s.item_id in corrupted} for s in suspects[:SUSPECTS_SHOWN]],
        part="suspect_labels")


def test_noise_robustness(cell, run, tunebench, task, task_data, record):
    shares = sorted({share for share in tunebench.options.label_noise if share > 0})
    if not shares:
        pytest.skip("pass --label-noise 0.1,0.2,0.4 to measure accuracy against the share of "
                    "corrupted training answers")
    headline = tunebench.headline_metric  # accuracy, or e.g. f1 for free text
    clean_rows = score_primary(run.candidate, task, task_data.eval, cache=run.scored,
                               headline=headline)
    clean = dict(zip((r["item_id"] for r in clean_rows), primary_values(clean_rows, headline),
                     strict=True))
    record.metric("noise_robustness[0]", accuracy(list(clean.values()), seed=cell.seed),
                  metric=headline, label_noise=0.0, corrupted=0, run_id=run.id)
    drops = []
    for share in shares:
        with tunebench.open_run(cell.approach, cell.seed, label_noise=share,
                                point=cell.point) as noisy:
            data = tunebench.task_data(cell.seed, label_noise=share)
            rows = score_primary(noisy.candidate, task, data.eval, headline=headline)
            values = primary_values(rows, headline)
            acc = accuracy(values, seed=cell.seed)
            comparison = compare_by_id(clean, dict(zip((r["item_id"] for r in rows), values,
                                                       strict=True)), seed=cell.seed)
            corrupted = len(corrupted_ids(data))
            side = Recorder(tunebench, noisy, "accuracy")
            side.metric("primary_accuracy", acc, metric=headline)
            side.examples(rows, part="choice" if all(e.choices for e in data.eval)
                          else "generation")  # per item: approaches compare paired at p
            name = noise_label(share)
            record.metric(f"noise_robustness[{name}]", acc, metric=headline, label_noise=share,
                          corrupted=corrupted, run_id=noisy.id)
            record.metric(f"noise_drop[{name}]", comparison.delta, label_noise=share,
                          corrupted=corrupted, fixed=comparison.fixed,
                          broken=comparison.broken, p_value=comparison.p_value, run_id=noisy.id)
            record_detection(record, noisy, data, share, cell.seed, tunebench.trains(
                cell.approach))
            drops.append((share, corrupted, len(data.train), acc, comparison))

    assert all(corrupted == round(share * n) for share, corrupted, n, *_ in drops)
    for *_, acc, comparison in drops:
        assert comparison.n == len(clean)
        assert abs(comparison.delta.value - (acc.value - sum(clean.values()) / len(clean))) < 1e-9
        assert comparison.delta.low <= comparison.delta.value <= comparison.delta.high
