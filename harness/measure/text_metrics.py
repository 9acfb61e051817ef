"""Scores of a free-text reply against its reference: overlap, meaning, and likelihood.

Exact match only tells a right reply from every other one; on open-ended answers (rewrite,
normalise, answer in a sentence) it scores near misses like nonsense. These per-item scores
are recorded for every task whose answers are free text, each in 0..1 unless stated:

- ``exact_match`` and ``f1``: SQuAD's normalised exact match and token F1 (Rajpurkar et al.,
  2016; :mod:`harness.tasks.qa`).
- ``rouge_l``: ROUGE-L F-measure, the longest common subsequence of words (Lin, 2004), by
  Google's ``rouge-score`` package (its tokenizer, no stemming, as Hugging Face ``evaluate``'s
  default).
- ``chrf``: chrF, the F-score (beta 2) of character 1-6-grams (Popovic, 2015), and ``bleu``:
  sentence BLEU with exponential smoothing and effective n-gram order (Papineni et al., 2002;
  Chen & Cherry, 2014), both by ``sacrebleu`` (Post, 2018), divided by 100.
- ``semantic_similarity``: cosine similarity of reply and reference embeddings from the offline
  all-MiniLM-L6-v2 model (Reimers & Gurevych, 2019), -1..1, in practice 0..1.
- ``ref_logprob``: the reference's mean log-probability per token as the candidate's reply to
  the prompt (nats; higher: the candidate would rather have said it), the likelihood view of
  lm-eval and of perplexity-based evaluation; it needs no generation. ``ref_perplexity`` is
  ``exp(-ref_logprob)``.

Every score is per item, so two candidates compare paired on the same items
(:func:`harness.measure.compare.compare_by_id`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.tasks.base import OPEN_METRICS as OPEN_METRICS  # named with the headlines
from harness.tasks.base import Example
from harness.tasks.qa import exact_match, token_f1


@functools.cache
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


@functools.cache
def _sacrebleu_metrics() -> tuple[Any, Any]:
    from sacrebleu.metrics import BLEU, CHRF

    return CHRF(), BLEU(effective_order=True)


def rouge_l(reply: str, reference: str) -> float:
    """ROUGE-L F-measure of ``reply`` against ``reference`` (0..1)."""
    return float(_rouge_scorer().score(reference, reply)["rougeL"].fmeasure)


def chrf(reply: str, reference: str) -> float:
    """Sentence chrF of ``reply`` against ``reference``, divided by 100 (0..1)."""
    return float(_sacrebleu_metrics()[0].sentence_score(reply, [reference]).score) / 100


def bleu(reply: str, reference: str) -> float:
    """Smoothed sentence BLEU of ``reply`` against ``reference``, divided by 100 (0..1)."""
    return float(_sacrebleu_metrics()[1].sentence_score(reply, [reference]).score) / 100


def overlap_scores(reply: str, reference: str) -> dict[str, float]:
    """The scores of :data:`OPEN_METRICS` computed from the two strings alone."""
    return {"exact_match": float(exact_match(reply, reference)),
            "f1": token_f1(reply, reference), "rouge_l": rouge_l(reply, reference),
            "chrf": chrf(reply, reference), "bleu": bleu(reply, reference)}


def semantic_similarities(replies: Sequence[str], references: Sequence[str]) -> list[float]:
    """Cosine similarity of each reply's and its reference's sentence embeddings."""
    from harness.retrieval.retrievers import EMBEDDED_EMBEDDER, load_encoder

    if not replies:
        return []
    encoder = load_encoder(EMBEDDED_EMBEDDER)
    vectors = encoder.encode([*replies, *references], batch_size=64,
                             normalize_embeddings=True, show_progress_bar=False,
                             convert_to_numpy=True)
    a, b = vectors[: len(replies)], vectors[len(replies):]
    return [float(x) for x in np.clip((a * b).sum(axis=1), -1.0, 1.0)]


def reference_logprobs(candidate: Any, examples: Sequence[Example]) -> list[float] | None:
    """Each reference answer's mean log-probability per token as ``candidate``'s reply to
    its prompt (after the candidate's own prompt rewriting), or ``None`` for a candidate
    without a tokenizer to count tokens with."""
    tokenizer = getattr(candidate, "tokenizer", None)
    if tokenizer is None:
        return None
    sums = candidate.score_choices([e.messages for e in examples],
                                   [(e.answer,) for e in examples])
    counts = [len(tokenizer(e.answer, add_special_tokens=False).input_ids) for e in examples]
    return [total[0] / n for total, n in zip(sums, counts, strict=True)]


def add_open_scores(rows: list[dict[str, Any]], examples: Sequence[Example],
                    candidate: Any, chunk: int = 64) -> None:
    """Fill each generation row's ``extra`` with the :data:`OPEN_METRICS` it lacks (a task's
    own scores, e.g. kb-qa's ``f1``, are kept). ``rows`` and ``examples`` are in the same
    order; rows already scored are left alone, so calling it twice costs nothing."""
    from harness.measure.evaluate import chunks

    by_id = {e.id: e for e in examples}
    todo = [r for r in rows if "semantic_similarity" not in r["extra"]]
    for row in todo:
        for name, value in overlap_scores(row["extra"]["generated"], row["reference"]).items():
            row["extra"].setdefault(name, value)
    for part in chunks(todo, "scoring replies", size=chunk):
        similar = semantic_similarities([r["extra"]["generated"] for r in part],
                                        [r["reference"] for r in part])
        likely = reference_logprobs(candidate, [by_id[r["item_id"]] for r in part])
        for n, row in enumerate(part):
            row["extra"]["semantic_similarity"] = similar[n]
            if likely is not None:
                row["extra"]["ref_logprob"] = likely[n]
