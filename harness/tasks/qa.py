"""Scoring free-text answers to questions: exact match, token F1, answer recall, refusals.

Exact match and token F1 follow the SQuAD evaluation script (Rajpurkar et al., 2016), with
its normalisation (lower case, no punctuation, no articles). Chat models answer in sentences,
so the headline "correct" is PopQA's rule (Mallen et al., 2023): the normalised reference
occurs, as whole words, in the normalised generation. Unanswerable questions are scored by
whether the reply refuses (SQuAD 2.0's no-answer idea, with a refusal phrase as the answer).
"""

from __future__ import annotations

import re
from collections import Counter

from harness.tasks.base import normalize_text

REFUSAL = "I don't know."
"""The reference answer of an unanswerable question."""

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_REFUSAL_PATTERNS = re.compile(
    r"\b(i (do not|don ?t|cannot|can ?t) (know|answer|find|say|tell)|"
    r"(do not|don ?t|doesn ?t|does not) (contain|mention|say|include|provide|state)|"
    r"not (mentioned|stated|provided|given|available|in the (passages|documents|context))|"
    r"no (information|mention|answer|record)|unknown|cannot be (answered|determined)|"
    r"(un|not )able to (answer|find|determine))\b"
)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, punctuation and articles removed, spaces collapsed."""
    return " ".join(_ARTICLES.sub(" ", normalize_text(text)).split())


def exact_match(generated: str, reference: str) -> bool:
    return normalize_answer(generated) == normalize_answer(reference)


def token_f1(generated: str, reference: str) -> float:
    """Harmonic mean of token precision and recall after normalisation (SQuAD)."""
    predicted, gold = normalize_answer(generated).split(), normalize_answer(reference).split()
    if not predicted or not gold:
        return float(predicted == gold)
    common = sum((Counter(predicted) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def is_refusal(generated: str) -> bool:
    """Whether a reply declines to answer ("I don't know", "the passages do not say"...)."""
    return bool(_REFUSAL_PATTERNS.search(normalize_text(generated)))


def contains_answer(generated: str, reference: str) -> bool:
    """PopQA's rule: the normalised reference occurs as whole words in the generation."""
    gold = normalize_answer(reference)
    return bool(gold) and f" {gold} " in f" {normalize_answer(generated)} "
