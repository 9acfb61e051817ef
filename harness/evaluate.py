"""Running a candidate over evaluation items, in batches, with a progress bar.

Returns per-item rows in the store's ``examples`` layout, so suites only compute statistics
and record them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm

from harness.approach import Candidate
from harness.tasks.base import Example, Task

CHUNK = 64
"""Items handed to the candidate per call: large enough to batch well, small enough for a
smooth progress bar."""


def _chunks(items: Sequence[Example], label: str) -> Any:
    bar = tqdm(total=len(items), desc=label, unit="item", leave=False, disable=None)
    for start in range(0, len(items), CHUNK):
        chunk = items[start : start + CHUNK]
        yield chunk
        bar.update(len(chunk))
    bar.close()


def score_by_choice(candidate: Candidate, examples: Sequence[Example]) -> list[dict[str, Any]]:
    """Predict the choice with the highest log-likelihood for each item."""
    rows: list[dict[str, Any]] = []
    for chunk in _chunks(examples, "scoring choices"):
        started = time.perf_counter()
        scores = candidate.score_choices([e.messages for e in chunk], [e.choices for e in chunk])
        per_item_ms = (time.perf_counter() - started) * 1000 / len(chunk)
        for example, choice_scores in zip(chunk, scores, strict=True):
            best = max(range(len(choice_scores)), key=choice_scores.__getitem__)
            prediction = example.choices[best]
            rows.append({
                "item_id": example.id,
                "prompt": example.prompt_text,
                "prediction": prediction,
                "reference": example.answer,
                "correct": prediction == example.answer,
                "score": choice_scores[best],
                "latency_ms": per_item_ms,
                "extra": {"choice_logprobs": dict(zip(example.choices, choice_scores, strict=True)),
                          **example.meta},
            })
    return rows


def score_by_generation(
    candidate: Candidate, task: Task, examples: Sequence[Example]
) -> list[dict[str, Any]]:
    """Generate greedily and let the task map each generation to a prediction."""
    rows: list[dict[str, Any]] = []
    for chunk in _chunks(examples, "generating"):
        started = time.perf_counter()
        outputs = candidate.generate([e.messages for e in chunk], task.max_new_tokens)
        per_item_ms = (time.perf_counter() - started) * 1000 / len(chunk)
        for example, text in zip(chunk, outputs, strict=True):
            prediction, correct = task.score_generation(text, example)
            rows.append({
                "item_id": example.id,
                "prompt": example.prompt_text,
                "prediction": prediction,
                "reference": example.answer,
                "correct": correct,
                "latency_ms": per_item_ms,
                "extra": {"generated": text, **example.meta},
            })
    return rows
