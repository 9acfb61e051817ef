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

from harness.measure.evaluate import (
    item_clusters,
    score_by_choice,
    score_by_generation,
    scored_once,
    tied_items,
)
from harness.measure.metrics import Estimate, accuracy, macro_f1, mean, per_class_accuracy
from harness.measure.text_metrics import OPEN_METRICS, add_open_scores

PER_ITEM_SCORES = (*OPEN_METRICS, "refused", "retrieval_ms", "model_ms")
"""Per-item numbers a generation row may carry (recorded as means with CIs)."""


def test_choice_accuracy(candidate, task_data, tunebench, record, run_seed):
    if not task_data.labels:
        pytest.skip(f"task {task_data.name!r} has no answer choices; see generation accuracy")
    rows = scored_once(record.run.scored, "choice", task_data.eval,
                       lambda items: score_by_choice(candidate, items))
    seed = run_seed
    predictions = [r["prediction"] for r in rows]
    references = [r["reference"] for r in rows]
    clusters = item_clusters(rows)
    acc = accuracy([r["correct"] for r in rows], seed=seed, clusters=clusters)
    f1 = macro_f1(predictions, references, task_data.labels, seed=seed)
    record.metric("accuracy", acc, draws=len(set(clusters)) if clusters else 1)
    record.metric("macro_f1", f1)
    record.metric("tied_items", tied_items(rows))
    for label, recall in per_class_accuracy(predictions, references, task_data.labels).items():
        record.metric(f"recall[{label}]", recall)
    record.examples(rows, part="choice")

    assert len(rows) == len(task_data.eval)
    assert 0.0 <= acc.value <= 1.0 and acc.low <= acc.value <= acc.high
    assert 0.0 <= f1.value <= 1.0


def test_generation_accuracy(candidate, task, task_data, tunebench, record, run_seed):
    rows = scored_once(record.run.scored, "generation", task_data.eval,
                       lambda items: score_by_generation(candidate, task, items))
    if not task_data.labels:
        add_open_scores(rows, task_data.eval, candidate)
    clusters = item_clusters(rows)
    acc = accuracy([r["correct"] for r in rows], seed=run_seed, clusters=clusters)
    record.metric("gen_accuracy", acc, draws=len(set(clusters)) if clusters else 1)
    if task_data.labels:
        unmatched = accuracy([r["prediction"] is None for r in rows], seed=run_seed)
        record.metric("gen_unmatched", unmatched)
    for name in PER_ITEM_SCORES:
        values = [r["extra"][name] for r in rows if name in r["extra"]]
        if values:
            every = clusters if len(values) == len(rows) else None
            record.metric(name, estimate := mean(values, seed=run_seed, clusters=every))
            if name == "ref_logprob":  # perplexity of the references: exp(-mean log-prob)
                record.metric("ref_perplexity", Estimate(
                    math.exp(-estimate.value), math.exp(-estimate.high),
                    math.exp(-estimate.low), estimate.n))
    kinds = sorted({r["extra"]["kind"] for r in rows if "kind" in r["extra"]})
    headline = tunebench.headline_metric
    for kind in kinds if len(kinds) > 1 else ():
        hits = [r["correct"] for r in rows if r["extra"].get("kind") == kind]
        record.metric(f"gen_accuracy[{kind}]", accuracy(hits, seed=run_seed))
        graded = [r["extra"][headline] for r in rows
                  if r["extra"].get("kind") == kind and headline in r["extra"]]
        if graded:
            record.metric(f"{headline}[{kind}]", mean(graded, seed=run_seed))
    record.examples(rows, part="generation")

    assert len(rows) == len(task_data.eval)
    assert 0.0 <= acc.value <= 1.0 and acc.low <= acc.value <= acc.high
