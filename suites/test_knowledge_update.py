"""Knowledge updatability: which candidates answer with the new facts once documents change.

The task's second corpus version changes some facts (prices, dates, names). Each candidate
answers the changed-fact questions on version 1, then version 2 is swapped in *without
retraining* (``ReadsDocuments.use_corpus``) and it answers again. Recorded: the share answering the
old fact before the swap and the old and new facts after it. RAG candidates should move to the
new facts; fine-tuned ones keep what they were trained on (cf. Ovadia et al., 2024,
"Fine-Tuning or Retrieval? Comparing Knowledge Injection in LLMs").
"""

import dataclasses

import pytest

from harness.core.capabilities import ReadsDocuments
from harness.measure.evaluate import score_by_generation
from harness.measure.metrics import accuracy


def with_old_answers(examples):
    return [dataclasses.replace(e, answer=e.meta["old_answer"]) for e in examples]


def test_answers_after_documents_change(candidate, task, task_data, tunebench, record, run_seed):
    if not (task_data.updated_corpus and task_data.update_eval):
        pytest.skip(f"task {task_data.name!r} has no second document version")
    questions, old = task_data.update_eval, with_old_answers(task_data.update_eval)
    seed = run_seed
    before = score_by_generation(candidate, task, old)
    reads = isinstance(candidate, ReadsDocuments)
    original = list(candidate.passages or task_data.corpus) if reads else []
    swapped = reads and candidate.use_corpus(task_data.updated_corpus)
    try:
        after = score_by_generation(candidate, task, questions) if swapped else [
            dict(row) for row in before]
    finally:
        if swapped:
            candidate.use_corpus(original)
    if not swapped:  # the candidate ignores documents: score the same answers on the new facts
        for row, example in zip(after, questions, strict=True):
            prediction, correct = task.score_generation(row["extra"]["generated"], example)
            row.update(prediction=prediction, reference=example.answer, correct=correct)
    old_after = [task.score_generation(r["extra"]["generated"], e)[1]
                 for r, e in zip(after, old, strict=True)]

    old_before_acc = accuracy([r["correct"] for r in before], seed=seed)
    new_after_acc = accuracy([r["correct"] for r in after], seed=seed)
    old_after_acc = accuracy(old_after, seed=seed)
    record.metric("old_facts_before", old_before_acc)
    record.metric("new_facts_after", new_after_acc)
    record.metric("old_facts_after", old_after_acc)
    record.metric("reads_documents", float(swapped))
    record.examples(before, part="before")
    record.examples(after, part="after")

    assert len(before) == len(after) == len(questions)
    for estimate in (old_before_acc, new_after_acc, old_after_acc):
        assert estimate.low <= estimate.value <= estimate.high
    if swapped:
        assert candidate.passages == original  # the shared candidate is back on version 1
