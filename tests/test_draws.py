"""Several draws of few-shot demonstrations: items answered per draw, two-stage bootstrap CIs,
and the decision rule pairing items within draws."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from harness.measure.compare import paired_comparison
from harness.measure.evaluate import item_clusters, score_by_choice
from harness.measure.metrics import accuracy, clustered_mean, clustered_p_value
from harness.tasks.base import Example
from plugins.prompting import FewShot, FewShotConfig, draw_seed, prompt_draw
from reports.decision import Candidate
from reports.rule import PAIRED, judge


def simulated_run(rng: np.random.Generator, draws: int, per_draw: int, spread: float):
    """Right/wrong items of one run: each draw has its own accuracy around 0.6."""
    rates = np.clip(rng.normal(0.6, spread, size=draws), 0, 1)
    hits = np.concatenate([rng.random(per_draw) < rate for rate in rates])
    return hits.astype(float), np.repeat(np.arange(draws), per_draw)


def test_two_stage_intervals_cover_the_mean_over_draws_where_item_intervals_do_not():
    """The control: with a known spread between draws (as few-shot's demonstrations have),
    the item bootstrap's interval misses the mean over draws far more often than 5%, the
    two-stage interval does not."""
    rng = np.random.default_rng(0)
    trials, item_cover, draw_cover = 60, 0, 0
    for trial in range(trials):
        hits, clusters = simulated_run(rng, draws=8, per_draw=60, spread=0.12)
        item = accuracy(hits.tolist(), seed=trial)
        both = accuracy(hits.tolist(), seed=trial, clusters=clusters.tolist())
        assert both.value == item.value == pytest.approx(hits.mean())
        item_cover += item.low <= 0.6 <= item.high
        draw_cover += both.low <= 0.6 <= both.high
    assert draw_cover / trials >= 0.85
    assert item_cover / trials <= 0.7


def test_one_cluster_is_the_item_bootstrap():
    hits = [1.0, 0.0, 1.0, 1.0, 0.0] * 20
    assert clustered_mean(hits, [3] * len(hits), seed=4) == accuracy(hits, seed=4)
    with pytest.raises(ValueError, match="cluster labels"):
        clustered_mean(hits, [0, 1])


def test_clustered_comparison_names_its_test_and_agrees_with_its_interval():
    rng = np.random.default_rng(1)
    a, clusters = simulated_run(rng, draws=6, per_draw=50, spread=0.15)
    b = np.where(rng.random(len(a)) < 0.3, 1.0, a)  # B fixes some of A's misses
    comparison = paired_comparison(a.tolist(), b.tolist(), clusters=clusters.tolist())
    assert comparison.clustered and "two-stage" in comparison.test
    assert comparison.delta.value == pytest.approx((b - a).mean())
    significant = comparison.p_value < 0.05
    assert significant == (comparison.delta.low > 0 or comparison.delta.high < 0)
    assert comparison.p_value == clustered_p_value((b - a).tolist(), clusters.tolist())
    plain = paired_comparison(a.tolist(), b.tolist())
    assert not plain.clustered and plain.test == "McNemar's exact test"


def test_items_are_spread_over_draws_the_same_way_every_time():
    prompts = [({"role": "user", "content": f"review {i}"},) for i in range(800)]
    counts = Counter(prompt_draw(p, 8) for p in prompts)
    assert set(counts) == set(range(8)) and min(counts.values()) > 60
    assert [prompt_draw(p, 8) for p in prompts[:20]] == [prompt_draw(p, 8) for p in prompts[:20]]
    assert {prompt_draw(p, 1) for p in prompts} == {0}
    assert draw_seed(7, 0) == 7 and draw_seed(7, 1) != draw_seed(7, 2)


def task_examples(n: int, prefix: str) -> list[Example]:
    return [Example(id=f"{prefix}{i}", answer="positive" if i % 2 else "negative",
                    messages=({"role": "system", "content": "Classify the review."},
                              {"role": "user", "content": f"Review {i}: fine"}),
                    choices=("negative", "positive")) for i in range(n)]


def few_shot(tiny_lm, draws: int):
    task = SimpleNamespace(train=task_examples(20, "t"), validation=[], labels=["negative",
                                                                               "positive"])
    ctx = SimpleNamespace(frozen_base=lambda: tiny_lm, task=task, seed=3)
    return FewShot(FewShotConfig(k=2, draws=draws)).prepare(ctx)


def test_few_shot_answers_each_item_with_one_draw_and_says_which(tiny_lm):
    candidate = few_shot(tiny_lm, draws=4)
    drawn = candidate.info["demonstration_draws"]
    assert len(drawn) == 4 and len({tuple(d) for d in drawn}) > 1
    assert candidate.info["demonstration_ids"] == drawn[0]
    items = task_examples(24, "e")
    rows = score_by_choice(candidate, items)
    assert [r["item_id"] for r in rows] == [e.id for e in items]  # back in the items' order
    assert [r["extra"]["draw"] for r in rows] == [candidate.draw_of(e.messages) for e in items]
    assert item_clusters(rows) == [r["extra"]["draw"] for r in rows]
    for row, item in zip(rows, items, strict=True):  # the draw's demonstrations were shown
        shown = candidate.rewrite(item.messages)
        demo_answers = [m["content"] for m in shown if m["role"] == "assistant"]
        assert len(demo_answers) == 2
        alone = candidate.score_choices([item.messages], [item.choices])[0]
        assert list(row["extra"]["choice_logprobs"].values()) == alone
    assert candidate.without_rewriting().draw_of is None


def test_one_draw_is_few_shot_as_it_was(tiny_lm):
    one = few_shot(tiny_lm, draws=1)
    assert one.draw_of is None and "demonstration_draws" not in one.info
    rows = score_by_choice(one, task_examples(6, "e"))
    assert item_clusters(rows) is None and all("draw" not in r["extra"] for r in rows)
    assert one.info["demonstration_ids"] == few_shot(tiny_lm, 4).info["demonstration_ids"]


def test_the_decision_rule_pairs_items_within_draws():
    rng = np.random.default_rng(2)
    few_hits, clusters = simulated_run(rng, draws=8, per_draw=40, spread=0.2)
    ids = [f"q{i:03d}" for i in range(len(few_hits))]
    best_hits = np.where(rng.random(len(ids)) < 0.5, 1.0, few_hits)
    best = Candidate("lora", "lora", best_hits.mean(), items=dict(zip(ids, best_hits > 0,
                                                                       strict=True)))
    items = dict(zip(ids, few_hits > 0, strict=True))
    plain = Candidate("few-shot", "few-shot", few_hits.mean(), items=items)
    drawn = Candidate("few-shot", "few-shot", few_hits.mean(), items=items,
                      draws=dict(zip(ids, clusters.tolist(), strict=True)))
    by_item, by_draw = judge(plain, best), judge(drawn, best)
    assert by_item.test == by_draw.test == PAIRED
    assert by_item.test_name == "McNemar" and "two-stage" in by_draw.test_name
    assert "two-stage" in by_draw.evidence()
    assert (by_draw.high - by_draw.low) > (by_item.high - by_item.low)  # the draws' variance


def test_over_seeds_the_interval_holds_the_spread_between_seeds():
    from harness.measure.metrics import accuracy as item_accuracy
    from harness.runner.summary import over_seeds

    rng = np.random.default_rng(3)
    runs = [[(float(rng.random() < rate), None) for _ in range(200)] for rate in (0.5, 0.7, 0.9)]
    per_seed = [float(np.mean([v for v, _ in rows])) for rows in runs]
    summary = over_seeds(runs, per_seed)
    pooled = item_accuracy([v for rows in runs for v, _ in rows])
    assert summary.mean == pytest.approx(pooled.value) and summary.seeds == 3
    assert summary.std == pytest.approx(np.std(per_seed, ddof=1))
    assert summary.high - summary.low > 2 * (pooled.high - pooled.low)  # seeds differ a lot
