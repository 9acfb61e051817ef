"""Training items whose given answer a candidate finds least likely: labels to review.

Classification items follow confident learning (Northcutt, Jiang and Chuang, 2021, "Confident
Learning: Estimating Uncertainty in Dataset Labels", JAIR 70), as implemented by ``cleanlab``'s
``filter.find_label_issues``: the candidate's probability of each label (its choice
log-likelihoods, normalised over the item's choices) is compared with per-label confidence
thresholds, so a candidate that leans towards one label overall does not flag every item of
the other. Flagged items are ranked by self-confidence (the probability of the given label,
lowest first).

Free-text items have no label set to count a confident joint over; they are ranked by the
candidate's log-likelihood of the given answer per character (length-normalised as lm-eval's
``acc_norm``), and those below Tukey's lower fence (Q1 - 1.5 IQR; Tukey, 1977, "Exploratory
Data Analysis") are flagged.

The probabilities are only out-of-sample (what confident learning assumes) for a candidate
that was not trained on the items: prompting and retrieval candidates, or a model trained on
other data. A candidate fine-tuned on these very items has seen their answers and may have
memorised the noisy ones; the suites record which case applies (``in_sample``). Measured on
``sentiment`` against injected noise (README, "Label noise and suspect labels"), candidates
fine-tuned for one epoch on the noisy items still found them best: one epoch learns the
majority rule, not each answer.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.core.approach import Candidate
from harness.tasks.base import Example

CHUNK = 16
"""Items scored per call."""
TUKEY_K = 1.5
"""Tukey's inner fence: free-text answers below Q1 - 1.5 IQR (per-character log-likelihood)."""
MIN_PER_LABEL = 5
"""Confident learning needs a few items of each label to set its thresholds."""


@dataclass(frozen=True)
class Suspect:
    """One training item whose given answer looks wrong to the candidate."""

    item_id: str
    source: str
    """Where the item comes from: ``file:line`` for users' data, else the item id."""
    prompt: str
    given: str
    likely: str
    """The answer the candidate finds most likely (classification), else ``""``."""
    given_score: float
    """Probability of the given label (classification) or log-likelihood per character."""
    rank: int
    """1 for the item the candidate finds least likely."""

    def row(self) -> dict[str, object]:
        """A row of the store's examples table (``Store.add_examples``)."""
        return {"item_id": self.item_id, "prompt": self.prompt, "prediction": self.likely,
                "reference": self.given, "correct": None, "score": self.given_score,
                "extra": {"source": self.source, "rank": self.rank}}


def label_probabilities(candidate: Candidate, items: Sequence[Example]) -> np.ndarray:
    """``(n, k)``: the candidate's probability of each choice of each item (a softmax of its
    choice log-likelihoods); every item must have the same choices, in the same order."""
    choices = items[0].choices
    if any(item.choices != choices for item in items):
        raise ValueError("every item must have the same choices to compare label probabilities")
    rows: list[list[float]] = []
    for start in range(0, len(items), CHUNK):
        chunk = items[start:start + CHUNK]
        rows += candidate.score_choices([e.messages for e in chunk], [e.choices for e in chunk])
    logits = np.asarray(rows, dtype=np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return probs / probs.sum(axis=1, keepdims=True)


def suspect_classification(candidate: Candidate, items: Sequence[Example]) -> list[Suspect]:
    """Confident learning over the items' label probabilities (``cleanlab``)."""
    from cleanlab.filter import find_label_issues

    choices = items[0].choices
    labels = np.asarray([choices.index(e.answer) for e in items])
    counts = np.bincount(labels, minlength=len(choices))
    if counts.min() < MIN_PER_LABEL:
        rare = ", ".join(f"{c!r} ({n})" for c, n in zip(choices, counts, strict=True)
                         if n < MIN_PER_LABEL)
        raise ValueError(f"confident learning needs at least {MIN_PER_LABEL} training items of "
                         f"each label; these have fewer: {rare}")
    probs = label_probabilities(candidate, items)
    flagged = find_label_issues(labels, probs, return_indices_ranked_by="self_confidence",
                                n_jobs=1)
    return [Suspect(items[i].id, items[i].source, items[i].prompt_text, items[i].answer,
                    choices[int(probs[i].argmax())], float(probs[i, labels[i]]), rank)
            for rank, i in enumerate(flagged, start=1)]


def suspect_free_text(candidate: Candidate, items: Sequence[Example]) -> list[Suspect]:
    """Answers whose per-character log-likelihood lies below Tukey's lower fence."""
    scores: list[float] = []
    for start in range(0, len(items), CHUNK):
        chunk = items[start:start + CHUNK]
        sums = candidate.score_choices([e.messages for e in chunk], [(e.answer,) for e in chunk])
        scores += [row[0] / max(1, len(e.answer)) for row, e in zip(sums, chunk, strict=True)]
    if len(scores) < 4:
        return []
    q1, _, q3 = statistics.quantiles(scores, n=4)
    fence = q1 - TUKEY_K * (q3 - q1)
    low = sorted((s, i) for i, s in enumerate(scores) if s < fence and math.isfinite(s))
    return [Suspect(items[i].id, items[i].source, items[i].prompt_text, items[i].answer,
                    "", score, rank) for rank, (score, i) in enumerate(low, start=1)]


def find_suspect_labels(candidate: Candidate, items: Sequence[Example]) -> list[Suspect]:
    """The items whose given answer ``candidate`` finds least likely, least likely first:
    confident learning when every item has the same choices, else free-text outliers."""
    items = [e for e in items if e.rejected is None]
    if not items:
        return []
    if items[0].choices and all(e.choices == items[0].choices for e in items):
        return suspect_classification(candidate, items)
    return suspect_free_text(candidate, items)


def detection_hits(suspects: Sequence[Suspect], items: Sequence[Example]
                   ) -> tuple[list[bool], list[bool]]:
    """Against known injected noise (``meta["corrupted_from"]``, :mod:`harness.data.noise`):
    for each flagged item whether it was corrupted (precision's hits), and for each corrupted
    item whether it was flagged (recall's hits)."""
    corrupted = {e.id for e in items if "corrupted_from" in e.meta}
    flagged = {s.item_id for s in suspects}
    return ([s.item_id in corrupted for s in suspects],
            [e.id in flagged for e in items if e.id in corrupted])
