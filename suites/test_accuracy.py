"""Task accuracy: constrained choice by log-likelihood and free generation, with 95% CIs.

Constrained scoring follows lm-eval's multiple-choice protocol; generation scoring maps the
reply to a label after normalisation. Both store every item's prediction. A candidate that
answers with several random draws (few-shot's demonstrations) gets two-stage bootstrap CIs:
draws resampled, then items within each (:func:`harness.measure.metrics.clustered_mean`).
Free-text answers also get graded scores per item (token F1, ROUGE-L, chrF, BLEU, semantic
similarity, the reference's likelihood: :mod:`harness.measure.text_metrics`), so near misses count.
"""

import math

import pytest

from harness.measure.adaptive import score_suite_items
from harness.measure.evaluate import (
    draw_labels,
    item_clusters,
    score_by_choice,
    score_by_generation,
    tied_items,
)
from harness.measure.metrics import Estimate, accuracy, macro_f1, mean, per_class_accuracy
from harness.measure.text_metrics import OPEN_METRICS, add_open_scores
from harness.runner.time_budget import cut_short

PER_ITEM_SCORES = (*OPEN_METRICS, "refused", "retrieval_ms", "model_ms")
"""Per-item numbers a generation row may carry (recorded as means with CIs)."""
BOUNDED_SCORES = ("exact_match", "f1", "rouge_l", "chrf", "bleu")
"""Graded headlines in [0, 1], on which ``--adaptive on`` can stop (semantic similarity and
the reference's log-probability have no such bounds: a candidate with one of them as its
headline stops on right/wrong)."""


def scored_rows(tunebench, record, candidate, kind, items, score, *, value_of):
    """The suite's rows for ``items``: every item, or with ``--adaptive on`` as many as settle
    the candidate (:func:`harness.measure.adaptive.score_suite_items`), and the outcome. A
    candidate answering with several draws (few-shot) is scored in full: a confidence sequence
    over its items would leave out the variance between draws, which its two-stage bootstrap
    includes. With ``--time-budget`` an adaptive candidate also stops when its share of the
    budget is spent (:mod:`harness.runner.time_budget`)."""
    run = record.run
    name = run.approach + "".join(f" {field}={value}" for field, value in run.point)
    return score_suite_items(
        items, score, kind=kind, seed=run.seed, name=name, value_of=value_of,
        plan=tunebench.adaptive_plan, references=tunebench.references, cache=run.scored,
        full=draw_labels(candidate, items[:1]) is not None,
        out_of_time=tunebench.time_budget.spent if tunebench.time_budget else None)


def adaptive_extra(tunebench, outcome, *, graded=False, rows=(), available=0):
    """What a metric stores of an adaptive evaluation: the outcome's fields when the metric is
    the one it stopped on, else how many items it covers (its interval is then a bootstrap's);
    for a candidate scored in full but cut by the time budget (``rows`` fewer than
    ``available``), that it was."""
    if outcome is None and len(rows) < available:
        return {"adaptive": True, "interval": "bootstrap", **cut_short(len(rows), available)}
    if outcome is None:
        return {}
    if graded:
        return {"adaptive": True, "interval": "bootstrap", "n_scored": outcome.n_scored,
                "n_available": outcome.n_available}
    return outcome.extra(tunebench.adaptive_plan)


def n_expected(tunebench, task_data, rows):
    """Items a candidate not stopped by a sequence must have been scored on: all, unless the
    time budget cut it (then at least one look)."""
    if tunebench.time_budget is not None and 0 < len(rows) < len(task_data.eval):
        return len(rows)
    return len(task_data.eval)


def test_choice_accuracy(candidate, task_data, tunebench, record, run_seed):
    if not task_data.labels:
        pytest.skip(f"task {task_data.name!r} has no answer choices; see generation accuracy")
    rows, outcome = scored_rows(tunebench, record, candidate, "choice", task_data.eval,
                                lambda items: score_by_choice(candidate, items),
                                value_of=lambda row: float(bool(row["correct"])))
    seed = run_seed
    predictions = [r["prediction"] for r in rows]
    references = [r["reference"] for r in rows]
    clusters = item_clusters(rows)
    acc = outcome.estimate if outcome else accuracy(
        [r["correct"] for r in rows], seed=seed, clusters=clusters)
    f1 = macro_f1(predictions, references, task_data.labels, seed=seed)
    record.metric("accuracy", acc, draws=len(set(clusters)) if clusters else 1,
                  **adaptive_extra(tunebench, outcome, rows=rows, available=len(task_data.eval)))
    record.metric("macro_f1", f1)
    record.metric("tied_items", tied_items(rows))
    for label, recall in per_class_accuracy(predictions, references, task_data.labels).items():
        record.metric(f"recall[{label}]", recall)
    record.examples(rows, part="choice")

    assert len(rows) == (outcome.n_scored if outcome else n_expected(tunebench, task_data, rows))
    assert 0.0 <= acc.value <= 1.0 and acc.low <= acc.value <= acc.high
    assert 0.0 <= f1.value <= 1.0


def test_generation_accuracy(candidate, task, task_data, tunebench, record, run_seed):
    headline = tunebench.headline_metric

    def generate(items: list) -> list[dict]:
        rows = score_by_generation(candidate, task, items)
        if not task_data.labels:
            add_open_scores(rows, items, candidate)
        return rows

    graded = headline in BOUNDED_SCORES
    rows, outcome = scored_rows(
        tunebench, record, candidate, "generation", task_data.eval, generate,
        value_of=(lambda row: float(row["extra"][headline])) if graded
        else (lambda row: float(bool(row["correct"]))))
    clusters = item_clusters(rows)
    stopped_on_accuracy = outcome is not None and not graded
    acc = outcome.estimate if stopped_on_accuracy else accuracy(
        [r["correct"] for r in rows], seed=run_seed, clusters=clusters)
    record.metric("gen_accuracy", acc, draws=len(set(clusters)) if clusters else 1,
                  **adaptive_extra(tunebench, outcome, graded=graded, rows=rows,
                                   available=len(task_data.eval)))
    if task_data.labels:
        unmatched = accuracy([r["prediction"] is None for r in rows], seed=run_seed)
        record.metric("gen_unmatched", unmatched)
    for name in PER_ITEM_SCORES:
        values = [r["extra"][name] for r in rows if name in r["extra"]]
        if values:
            every = clusters if len(values) == len(rows) else None
            if name == headline and graded and outcome is not None:  # what it stopped on
                estimate, extra = outcome.estimate, adaptive_extra(tunebench, outcome)
            else:
                estimate, extra = mean(values, seed=run_seed, clusters=every), {}
            record.metric(name, estimate, **extra)
            if name == "ref_logprob":  # perplexity of the references: exp(-mean log-prob)
                record.metric("ref_perplexity", Estimate(
                    math.exp(-estimate.value), math.exp(-estimate.high),
                    math.exp(-estimate.low), estimate.n))
    kinds = sorted({r["extra"]["kind"] for r in rows if "kind" in r["extra"]})
    for kind in kinds if len(kinds) > 1 else ():
        hits = [r["correct"] for r in rows if r["extra"].get("kind") == kind]
        record.metric(f"gen_accuracy[{kind}]", accuracy(hits, seed=run_seed))
        kind_scores = [r["extra"][headline] for r in rows
                       if r["extra"].get("kind") == kind and headline in r["extra"]]
        if kind_scores:
            record.metric(f"{headline}[{kind}]", mean(kind_scores, seed=run_seed))
    record.examples(rows, part="generation")

    assert len(rows) == (outcome.n_scored if outcome else n_expected(tunebench, task_data, rows))
    assert 0.0 <= acc.value <= 1.0 and acc.low <= acc.value <= acc.high
