"""Retrieval quality of candidates that retrieve: recall@k against each question's gold passages.

recall@k is the share of a question's gold passages found among the k retrieved chunks'
passages (averaged over answerable questions, with a bootstrap CI); hit@k counts questions
with at least one gold passage retrieved (Karpukhin et al., 2020, report the latter as
top-k accuracy). Candidates that do not retrieve are skipped.
"""

import pytest

from harness.core.capabilities import ReadsDocuments
from harness.measure.metrics import mean


def gold_passages(example) -> set[str]:
    return {p for p in example.meta.get("gold_passages", "").split(",") if p}


def test_recall_at_k(candidate, task_data, tunebench, record, run_seed):
    if not isinstance(candidate, ReadsDocuments):
        pytest.skip("this candidate does not retrieve")
    questions = [e for e in task_data.eval if gold_passages(e)]
    if not questions:
        pytest.skip(f"task {task_data.name!r} has no gold passages to measure retrieval against")
    found = candidate.retrieve([e.messages[-1]["content"] for e in questions])
    rows, recalls, hits = [], [], []
    for example, chunks in zip(questions, found, strict=True):
        gold, retrieved = gold_passages(example), [c.passage_id for c in chunks]
        recalls.append(len(gold & set(retrieved)) / len(gold))
        hits.append(bool(gold & set(retrieved)))
        rows.append({
            "item_id": example.id, "prompt": example.prompt_text,
            "prediction": ",".join(retrieved), "reference": ",".join(sorted(gold)),
            "correct": gold <= set(retrieved), "score": recalls[-1],
            "extra": {"kind": example.meta.get("kind", "")},
        })
    k = candidate.top_k
    seed = run_seed
    recall, hit = mean(recalls, seed=seed), mean(hits, seed=seed)
    record.metric("recall_at_k", recall, k=k)
    record.metric("hit_at_k", hit, k=k)
    record.examples(rows)

    assert all(len(chunks) <= k for chunks in found)
    assert 0.0 <= recall.value <= hit.value <= 1.0
    assert recall.low <= recall.value <= recall.high
