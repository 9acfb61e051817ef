"""Adaptive evaluation (harness/measure/adaptive.py): the seeded order, the stopping rules, the
cache and the references kept for later candidates. The coverage of the confidence sequences
under optional stopping is tests/test_sequential.py's; a runner session with --adaptive on is
tests/test_adaptive_run.py's."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from harness.measure.adaptive import (
    AdaptivePlan,
    Reference,
    References,
    evaluate_adaptively,
    item_order,
    score_suite_items,
    settled,
)
from harness.measure.metrics import Estimate


@dataclass(frozen=True)
class Item:
    id: str


def items_of(n: int) -> list[Item]:
    return [Item(f"item-{i}") for i in range(n)]


def scorer(truth: dict[str, float], calls: list[int] | None = None):
    """Rows of a candidate that answers item ``i`` with ``truth[i]`` (1 right, 0 wrong)."""
    def score(chunk: list[Item]) -> list[dict]:
        if calls is not None:
            calls.append(len(chunk))
        return [{"item_id": item.id, "correct": bool(truth[item.id])} for item in chunk]
    return score


def correct(row: dict) -> float:
    return float(row["correct"])


def answers(items: list[Item], accuracy: float, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    return {item.id: float(rng.random() < accuracy) for item in items}


def run(items, truth, plan, reference=None, seed=0):
    return evaluate_adaptively(items, scorer(truth), seed=seed, plan=plan, value_of=correct,
                               item_id=lambda item: item.id, reference=reference)


def test_every_candidate_of_a_seed_meets_the_items_in_one_order():
    items = items_of(200)
    order = [i.id for i in item_order(items, 3, lambda i: i.id)]
    shuffled = [i.id for i in item_order(items[::-1], 3, lambda i: i.id)]
    fewer = [i.id for i in item_order(items[50:], 3, lambda i: i.id)]
    assert order == shuffled
    assert fewer == [i for i in order if i in set(fewer)]  # the same relative order
    assert order != [i.id for i in items]
    assert order != [i.id for i in item_order(items, 4, lambda i: i.id)]


def test_a_clearly_worse_candidate_stops_early_against_the_best():
    items = items_of(500)
    best = answers(items, 0.95, seed=1)
    rows, outcome = run(items, answers(items, 0.55, seed=2), AdaptivePlan(ci_width=0.01),
                        Reference("full-ft", best))
    assert outcome.stopped == "worse" and outcome.versus == "full-ft"
    assert outcome.n_scored == len(rows) < 250 and outcome.n_available == 500
    assert outcome.difference.high < -0.02
    assert outcome.estimate.low <= outcome.estimate.value <= outcome.estimate.high
    extra = outcome.extra(AdaptivePlan(ci_width=0.01))
    assert extra["stopped"] == "worse" and extra["n_scored"] == len(rows)
    assert "below -0.02" in extra["stop_reason"] and extra["shared"] == len(rows)


def test_the_same_candidate_as_the_best_stops_as_equivalent():
    items = items_of(4000)
    best = answers(items, 0.9, seed=1)
    rows, outcome = run(items, best, AdaptivePlan(ci_width=0.001), Reference("lora", best))
    assert outcome.stopped == "equivalent"
    assert -0.02 <= outcome.difference.low <= 0 <= outcome.difference.high <= 0.02
    assert len(rows) < 4000


def test_without_a_reference_it_stops_once_precise_enough():
    items = items_of(2000)
    rows, outcome = run(items, answers(items, 0.9, seed=5), AdaptivePlan(ci_width=0.15))
    assert outcome.stopped == "precise" and outcome.versus is None
    assert outcome.estimate.high - outcome.estimate.low <= 0.15
    assert len(rows) < 2000 and len(rows) % 50 == 0
    narrower = run(items, answers(items, 0.9, seed=5), AdaptivePlan(ci_width=0.08))[1]
    assert narrower.n_scored > outcome.n_scored


def test_an_unsettled_candidate_is_scored_on_every_item():
    items = items_of(60)
    truth = answers(items, 0.6, seed=3)
    rows, outcome = run(items, truth, AdaptivePlan(ci_width=0.05),
                        Reference("zero-shot", answers(items, 0.6, seed=4)))
    assert outcome.stopped == "all" and outcome.n_scored == 60
    assert sorted(r["item_id"] for r in rows) == sorted(truth)
    assert outcome.estimate.value == pytest.approx(sum(truth.values()) / 60)


def test_a_better_candidate_does_not_stop_for_being_better():
    items = items_of(300)
    rows, outcome = run(items, answers(items, 0.95, seed=1), AdaptivePlan(ci_width=0.01),
                        Reference("zero-shot", answers(items, 0.5, seed=2)))
    assert outcome.stopped == "all" and outcome.difference.low > 0.02 and len(rows) == 300


def test_the_rules_in_order():
    plan = AdaptivePlan(ci_width=0.1, margin=0.02)
    wide, narrow = Estimate(0.5, 0.3, 0.7, 100), Estimate(0.5, 0.46, 0.54, 100)
    assert settled(wide, Estimate(-0.2, -0.3, -0.05, 100), plan) == "worse"
    assert settled(wide, Estimate(0.0, -0.015, 0.018, 100), plan) == "equivalent"
    assert settled(narrow, Estimate(0.0, -0.1, 0.1, 100), plan) == "precise"
    assert settled(wide, Estimate(0.0, -0.1, 0.1, 100), plan) is None
    assert settled(wide, None, plan) is None


def test_chunks_are_about_a_tenth_of_the_items_between_10_and_50():
    plan = AdaptivePlan()
    assert [plan.chunk_for(n) for n in (5, 40, 100, 320, 500, 5000)] == [10, 10, 10, 32, 50, 50]
    calls: list[int] = []
    evaluate_adaptively(items_of(40), scorer(answers(items_of(40), 0.5, 0), calls), seed=0,
                        plan=AdaptivePlan(ci_width=0.01), value_of=correct,
                        item_id=lambda i: i.id)
    assert calls == [10, 10, 10, 10]


@pytest.mark.parametrize("bad", [{"ci_width": 0}, {"ci_width": 1.5}, {"margin": -0.1},
                                 {"chunk": 0}])
def test_a_plan_out_of_range_says_what_to_give(bad):
    with pytest.raises(ValueError, match=r"must be|give a number"):
        AdaptivePlan(**bad)


def test_the_best_earlier_candidate_is_the_reference_and_never_itself():
    kept = References()
    assert kept.best("choice", 0) is None
    kept.add("choice", 0, "zero-shot", {"a": 0.0, "b": 1.0})
    kept.add("choice", 0, "lora", {"a": 1.0, "b": 1.0})
    kept.add("choice", 1, "full-ft", {"a": 1.0})
    kept.add("generation", 0, "adapters", {"a": 1.0})
    assert kept.best("choice", 0).name == "lora"
    assert kept.best("choice", 0, besides="lora").name == "zero-shot"
    assert kept.best("choice", 2) is None


def test_suite_items_reuse_the_runs_cache_and_are_kept_for_later_candidates():
    items = items_of(100)
    truth = answers(items, 0.9, seed=7)
    cache: dict = {}
    calls: list[int] = []
    kept = References()
    plan = AdaptivePlan(ci_width=0.5)
    rows, outcome = score_suite_items(items, scorer(truth, calls), kind="choice", seed=0,
                                      name="lora", value_of=correct, plan=plan,
                                      references=kept, cache=cache)
    assert outcome.stopped == "precise" and len(cache) == len(rows) == sum(calls)
    again, _ = score_suite_items(items, scorer(truth, calls), kind="choice", seed=0,
                                 name="lora", value_of=correct, plan=plan,
                                 references=kept, cache=cache)
    assert sum(calls) == len(rows) and again == rows  # nothing scored twice
    assert kept.best("choice", 0).values == {r["item_id"]: correct(r) for r in rows}
    whole, none = score_suite_items(items, scorer(truth), kind="choice", seed=0, name="x",
                                    value_of=correct, plan=plan, references=kept, full=True)
    assert none is None and len(whole) == 100
    off, nothing = score_suite_items(items, scorer(truth), kind="choice", seed=0, name="y",
                                     value_of=correct, plan=None, references=kept)
    assert nothing is None and len(off) == 100
    assert kept.names("choice", 0) == ["lora", "x"]  # --adaptive off keeps nothing
