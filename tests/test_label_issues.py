"""The noisy-label detector (harness.measure.label_issues): confident learning finds planted
label errors, free-text outliers are flagged, and precision/recall against injected noise."""

from __future__ import annotations

import math
import random

import pytest

from harness.core.approach import Candidate
from harness.measure.label_issues import (
    detection_hits,
    find_suspect_labels,
    label_probabilities,
)
from harness.tasks.base import Example

LABELS = ("negative", "positive")


class KnowsTheTruth(Candidate):
    """Scores the item's true label (its ``meta["truth"]``) as ``confidence`` likely, with a
    seeded jitter, so the given label is unlikely exactly where it was corrupted."""

    def __init__(self, confidence: float = 0.85, lean: float = 0.0) -> None:
        super().__init__()
        self.confidence, self.lean = confidence, lean
        self.truth: dict[str, str] = {}

    def generate(self, prompts, max_new_tokens=32):
        raise NotImplementedError

    def score_choices(self, prompts, choices):
        rows = []
        for messages, options in zip(prompts, choices, strict=True):
            text = messages[-1]["content"]
            rng = random.Random(text)
            p = min(0.99, max(0.01, self.confidence + rng.uniform(-0.05, 0.05)))
            truth = self.truth[text]
            rows.append([math.log(p if o == truth else 1 - p) + (self.lean if o == "positive"
                         else 0.0) for o in options])
        return rows


def labelled(n: int, corrupt: set[int], candidate: KnowsTheTruth) -> list[Example]:
    items = []
    for i in range(n):
        truth = LABELS[i % 2]
        given = LABELS[1 - i % 2] if i in corrupt else truth
        prompt = f"review number {i}"
        candidate.truth[prompt] = truth
        meta = {"source": f"data.jsonl:{i + 1}"}
        if i in corrupt:
            meta["corrupted_from"] = truth
        items.append(Example(f"i{i}", ({"role": "user", "content": prompt},), given, LABELS,
                             meta=meta))
    return items


def test_probabilities_are_a_softmax_over_choices():
    candidate = KnowsTheTruth(confidence=0.8)
    items = labelled(4, set(), candidate)
    probs = label_probabilities(candidate, items)
    assert probs.shape == (4, 2)
    assert probs.sum(axis=1) == pytest.approx([1, 1, 1, 1])
    assert all(probs[i, i % 2] > 0.5 for i in range(4))


def test_confident_learning_finds_planted_label_errors():
    corrupt = set(random.Random(0).sample(range(200), 20))
    candidate = KnowsTheTruth()
    items = labelled(200, corrupt, candidate)
    suspects = find_suspect_labels(candidate, items)
    precision_hits, recall_hits = detection_hits(suspects, items)
    assert len(recall_hits) == 20
    assert sum(precision_hits) / len(precision_hits) >= 0.9
    assert sum(recall_hits) / len(recall_hits) >= 0.9
    assert [s.rank for s in suspects] == list(range(1, len(suspects) + 1))
    scores = [s.given_score for s in suspects]
    assert scores == sorted(scores)  # least likely first
    first = suspects[0]
    assert first.source.startswith("data.jsonl:") and first.likely != first.given
    assert first.row()["extra"]["source"] == first.source


def test_a_candidate_leaning_to_one_label_does_not_flag_the_other_label_wholesale():
    """A candidate leaning 2 nats towards 'positive' prefers it on most items, so flagging
    every disagreement would list ~80 items, mostly correct; confident learning's per-label
    thresholds absorb the lean and keep precision high."""
    corrupt = set(random.Random(0).sample(range(200), 20))
    candidate = KnowsTheTruth(lean=2.0)
    items = labelled(200, corrupt, candidate)
    probs = label_probabilities(candidate, items)
    disagree = [e.id for e, p in zip(items, probs, strict=True) if LABELS[p.argmax()] != e.answer]
    assert len(disagree) > 60
    assert sum(e in {f"i{i}" for i in corrupt} for e in disagree) / len(disagree) < 0.3
    precision_hits, recall_hits = detection_hits(find_suspect_labels(candidate, items), items)
    assert sum(precision_hits) / len(precision_hits) >= 0.7
    assert sum(recall_hits) >= 5


def test_clean_labels_flag_few():
    candidate = KnowsTheTruth()
    items = labelled(200, set(), candidate)
    assert len(find_suspect_labels(candidate, items)) <= 4


def test_too_few_items_of_a_label_is_a_clear_error():
    candidate = KnowsTheTruth()
    items = [e for e in labelled(40, set(), candidate) if e.answer == "negative"]
    items += labelled(6, set(), candidate)[1:4:2]
    with pytest.raises(ValueError, match=r"at least 5 training items of each label.*'positive'"):
        find_suspect_labels(candidate, items)


class AnswerLikelihood(Candidate):
    """Log-likelihood -1 per character, except answers containing 'zzz' (-10 per char)."""

    def generate(self, prompts, max_new_tokens=32):
        raise NotImplementedError

    def score_choices(self, prompts, choices):
        return [[-(10.0 if "zzz" in c else 1.0) * len(c) for c in options]
                for options in choices]


def test_free_text_answers_below_the_fence_are_flagged():
    items = [Example(f"q{i}", ({"role": "user", "content": f"question {i}"},),
                     "zzz wrong" if i in (3, 11) else f"answer {i}") for i in range(30)]
    suspects = find_suspect_labels(AnswerLikelihood(), items)
    assert {s.item_id for s in suspects} == {"q3", "q11"}
    assert all(s.likely == "" and s.given_score == pytest.approx(-10.0) for s in suspects)
