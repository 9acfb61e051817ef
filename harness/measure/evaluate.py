"""Running a candidate over evaluation items, in batches, with a progress bar.

Returns per-item rows in the store's ``examples`` layout, so suites only compute statistics
and record them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from tqdm.auto import tqdm

from harness.core.approach import Candidate
from harness.measure.text_metrics import OPEN_METRICS, add_open_scores
from harness.tasks.base import Example, Task

CHUNK = 64
"""Items handed to the candidate per call: large enough to batch well, small enough for a
smooth progress bar."""


def timed(candidate: Candidate, call: Any) -> tuple[Any, float, dict[str, float]]:
    """``call()``'s result, its wall seconds, and how the candidate's phase timers moved."""
    timings = getattr(candidate, "timings", {})
    before = dict(timings)
    started = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - started
    return result, seconds, {k: v - before.get(k, 0.0) for k, v in timings.items()}


def _per_item_ms(seconds: float, phases: dict[str, float], n: int) -> dict[str, Any]:
    """Latency per item; phases (e.g. retrieval) apart, and the rest as ``model_ms``."""
    fields: dict[str, Any] = {"latency_ms": seconds * 1000 / n}
    if phases:
        for name, spent in phases.items():
            fields[name.removesuffix("_seconds") + "_ms"] = spent * 1000 / n
        fields["model_ms"] = (seconds - sum(phases.values())) * 1000 / n
    return fields


def chunks(items: Sequence[Any], label: str, size: int = CHUNK) -> Any:
    """``items`` in slices of ``size``, with a progress bar named ``label``."""
    bar = tqdm(total=len(items), desc=label, unit="item", leave=False, disable=None)
    for start in range(0, len(items), size):
        chunk = items[start : start + size]
        yield chunk
        bar.update(len(chunk))
    bar.close()


def draw_labels(candidate: Candidate, examples: Sequence[Example]) -> list[int] | None:
    """The draw (e.g. of few-shot demonstrations) each item is answered with, when the
    candidate answers with several (its ``draw_of``); ``None`` otherwise."""
    draw_of = getattr(candidate, "draw_of", None)
    return None if draw_of is None else [draw_of(e.messages) for e in examples]


def by_draw(candidate: Candidate, examples: Sequence[Example], label: str) -> Any:
    """``(positions, chunk)`` pairs covering ``examples``, each chunk answered with one draw
    (so its prompts share their demonstrations, encoded once: prefix caching), with a
    progress bar. Scores do not depend on the batch (:mod:`harness.models.scoring`), so the
    order changes no number; callers put rows back in the items' order by ``positions``."""
    draws = draw_labels(candidate, examples) or [0] * len(examples)
    order = sorted(range(len(examples)), key=lambda i: draws[i])
    bar = tqdm(total=len(examples), desc=label, unit="item", leave=False, disable=None)
    start = 0
    while start < len(order):
        end = start + 1
        while end < len(order) and end - start < CHUNK and draws[order[end]] == draws[order[start]]:
            end += 1
        positions = order[start:end]
        yield positions, [examples[i] for i in positions]
        bar.update(len(positions))
        start = end
    bar.close()


def with_draws(candidate: Candidate, examples: Sequence[Example],
               rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with the draw each item was answered with in ``extra["draw"]`` (when the
    candidate answers with several)."""
    for row, draw in zip(rows, draw_labels(candidate, examples) or (), strict=False):
        row["extra"]["draw"] = draw
    return rows


def item_clusters(rows: Sequence[dict[str, Any]]) -> list[int] | None:
    """The rows' draws when they come from two or more (the clusters of a two-stage
    bootstrap, :func:`harness.measure.metrics.clustered_mean`), else ``None``."""
    draws = [row["extra"].get("draw") for row in rows]
    if None in draws or len(set(draws)) < 2:
        return None
    return draws


def best_choice(choice_scores: Sequence[float], item_id: str) -> tuple[int, int]:
    """The index of the highest score, and how many choices share it (1: no tie).

    An exact tie (rare since the output layer is applied in fp32,
    :mod:`harness.models.scoring`) is broken by a hash of the item's id: the same choice in
    every run and session, and across items each tied position equally likely, so no choice
    is favoured for coming first (``max`` would always pick the first of the tied)."""
    top = max(choice_scores)
    tied = [i for i, score in enumerate(choice_scores) if score == top]
    if len(tied) == 1:
        return tied[0], 1
    digest = int.from_bytes(hashlib.sha256(item_id.encode()).digest()[:8], "big")
    return tied[digest % len(tied)], len(tied)


def tied_items(rows: Sequence[dict[str, Any]]) -> int:
    """How many choice-scored rows had two or more choices with exactly the best score."""
    return sum(1 for row in rows if row["extra"].get("tied", 1) > 1)


def _choice_row(example: Example, choice_scores: Sequence[float],
                timing: dict[str, Any]) -> dict[str, Any]:
    best, tied = best_choice(choice_scores, example.id)
    prediction = example.choices[best]
    tie = {"tied": tied} if tied > 1 else {}
    return {
        "item_id": example.id,
        "prompt": example.prompt_text,
        "prediction": prediction,
        "reference": example.answer,
        "correct": prediction == example.answer,
        "score": choice_scores[best],
        "latency_ms": timing["latency_ms"],
        "extra": {"choice_logprobs": dict(zip(example.choices, choice_scores, strict=True)),
                  **tie, **timing, **example.meta},
    }


def score_by_choice(candidate: Candidate, examples: Sequence[Example]) -> list[dict[str, Any]]:
    """Predict the choice with the highest log-likelihood for each item."""
    rows: list[dict[str, Any]] = [{}] * len(examples)
    for positions, chunk in by_draw(candidate, examples, "scoring choices"):
        scores, seconds, phases = timed(candidate, lambda chunk=chunk: candidate.score_choices(
            [e.messages for e in chunk], [e.choices for e in chunk]))
        timing = _per_item_ms(seconds, phases, len(chunk))
        for position, example, choice_scores in zip(positions, chunk, scores, strict=True):
            rows[position] = _choice_row(example, choice_scores, timing)
    return with_draws(candidate, examples, rows)


def score_by_raw_choice(
    candidate: Candidate, examples: Sequence[Example], context: Callable[[Example], str],
) -> list[dict[str, Any]]:
    """:func:`score_by_choice` in raw mode: each choice, after a space, scored as the plain-text
    continuation of ``context(example)`` (no chat template, no prompt rewriting: lm-eval
    HFLM's protocol, :func:`harness.models.raw_text.raw_loglikelihood`). Raises
    ``NotImplementedError`` for a candidate without a language model."""
    from harness.models.raw_text import raw_loglikelihood

    rows: list[dict[str, Any]] = []
    for chunk in chunks(examples, "scoring choices (raw)"):
        pairs = [(context(e), f" {choice}") for e in chunk for choice in e.choices]
        scores, seconds, _ = timed(candidate, lambda pairs=pairs: raw_loglikelihood(
            candidate, pairs))
        timing = _per_item_ms(seconds, {}, len(chunk))
        flat = iter(logprob for logprob, _ in scores)
        rows += [_choice_row(e, [next(flat) for _ in e.choices], timing) for e in chunk]
    return rows


def score_by_generation(
    candidate: Candidate, task: Task, examples: Sequence[Example]
) -> list[dict[str, Any]]:
    """Generate greedily and let the task map each generation to a prediction."""
    rows: list[dict[str, Any]] = [{}] * len(examples)
    for positions, chunk in by_draw(candidate, examples, "generating"):
        outputs, seconds, phases = timed(candidate, lambda chunk=chunk: candidate.generate(
            [e.messages for e in chunk], task.max_new_tokens))
        timing = _per_item_ms(seconds, phases, len(chunk))
        for position, example, text in zip(positions, chunk, outputs, strict=True):
            prediction, correct = task.score_generation(text, example)
            scores = task.extra_scores(text, example)
            rows[position] = {
                "item_id": example.id,
                "prompt": example.prompt_text,
                "prediction": prediction,
                "reference": example.answer,
                "correct": correct,
                "latency_ms": timing["latency_ms"],
                "extra": {"generated": text, **scores, **timing, **example.meta},
            }
    return with_draws(candidate, examples, rows)


def scored_once(
    cache: dict[tuple[str, str], dict[str, Any]] | None, kind: str,
    examples: Sequence[Example], score: Callable[[list[Example]], list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """``score(examples)``'s rows, computing only the items ``cache`` has no ``kind`` row for
    yet (suites of one run share its cache, so no item is scored twice the same way)."""
    if cache is None:
        return score(list(examples))
    missing = [e for e in examples if (kind, e.id) not in cache]
    if missing:
        for example, row in zip(missing, score(missing), strict=True):
            cache[(kind, example.id)] = row
    return [dict(cache[(kind, e.id)]) for e in examples]


def score_primary(
    candidate: Candidate, task: Task, examples: Sequence[Example],
    cache: dict[tuple[str, str], dict[str, Any]] | None = None, headline: str | None = None,
) -> list[dict[str, Any]]:
    """The task's headline scoring: constrained choice when the items have choices (as the
    accuracy suite's ``accuracy``), free generation otherwise (its ``gen_accuracy``, and the
    graded scores of :mod:`harness.measure.text_metrics` when ``headline`` is one of them);
    ``cache`` (a run's ``scored``) reuses rows already computed for the same items. Read each
    row's value with :func:`primary_values`."""
    if examples and all(e.choices for e in examples):
        return scored_once(cache, "choice", examples,
                           lambda items: score_by_choice(candidate, items))
    rows = scored_once(cache, "generation", examples,
                       lambda items: score_by_generation(candidate, task, items))
    if headline in OPEN_METRICS:
        add_open_scores(rows, examples, candidate)
    return rows


def primary_values(rows: Sequence[dict[str, Any]], headline: str | None = None) -> list[float]:
    """Each row's value on the task's headline: the graded score when the headline is one of
    :data:`~harness.measure.text_metrics.OPEN_METRICS` and every row carries it (a candidate
    without a tokenizer has no ``ref_logprob``), else 1/0 for right/wrong (accuracy)."""
    if headline in OPEN_METRICS and all(headline in r["extra"] for r in rows):
        return [float(r["extra"][headline]) for r in rows]
    return [float(bool(r["correct"])) for r in rows]
