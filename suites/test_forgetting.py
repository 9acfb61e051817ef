"""Catastrophic forgetting: general ability before (the base model) and after adaptation.

The same probes are scored for the base model (once per session) and for each candidate, so
every comparison is paired per item (Biderman et al., 2024, "LoRA Learns Less and Forgets
Less", measure forgetting the same way on general benchmarks):

- the built-in ``general`` probes (multiple choice, scored by log-likelihood): accuracy
  delta with a paired-bootstrap CI, McNemar's exact p-value, items fixed and broken, per
  category; every item's before/after result is stored, so reports can show what flipped;
- perplexity on held-out general text (``general_text()``), before and after;
- any lm-eval task (``--forgetting-tasks hellaswag,my_task.yaml``) through the lm-eval
  bridge, paired per document the same way.

Candidates that rewrite prompts (few-shot, RAG) answer the probes as they would any prompt:
what is measured is the deployed candidate, demonstrations and retrieval included.
"""

import math
import warnings

import numpy as np
import pytest

from harness.core.plugins import tasks
from harness.measure.compare import pair_by_id, paired_comparison
from harness.measure.evaluate import score_by_choice
from harness.measure.metrics import accuracy, bootstrap, paired_difference

PROBES = {"smoke": 24, "quick": None, "full": None}
"""General probe items per budget (None: all of them)."""
LMEVAL_LIMIT = {"smoke": 20, "quick": 500, "full": None}
"""Documents per lm-eval task per budget (None: all)."""
TEXTS = {"smoke": 3, "quick": None, "full": None}
"""Paragraphs of general text for perplexity per budget (None: all)."""


def general_probes(tunebench, seed):
    def load():
        items = tasks().get("general")().load(seed).eval
        limit = PROBES[tunebench.budget.name]
        return items if limit is None else items[:limit]

    return tunebench.memo(("general probes", seed), load)


def _record_comparison(record, name, comparison, **extra):
    record.metric(name, comparison.delta, fixed=comparison.fixed,
                  broken=comparison.broken, p_value=comparison.p_value, **extra)


def test_general_probes(candidate, tunebench, record, run_seed):
    items = general_probes(tunebench, run_seed)
    base_rows = tunebench.memo(
        ("general probes, base", run_seed, len(items)),
        lambda: score_by_choice(tunebench.base_candidate, items))
    rows = score_by_choice(candidate, items)
    before = [r["correct"] for r in base_rows]
    after = [r["correct"] for r in rows]
    comparison = paired_comparison(before, after, seed=run_seed)
    record.metric("probe_accuracy_base", accuracy(before, seed=run_seed))
    record.metric("probe_accuracy", accuracy(after, seed=run_seed))
    _record_comparison(record, "forgetting_delta", comparison)
    record.metric("mcnemar_p", comparison.p_value)
    record.metric("items_fixed", comparison.fixed)
    record.metric("items_broken", comparison.broken)
    categories = sorted({e.meta["category"] for e in items})
    for category in categories:
        picked = [i for i, e in enumerate(items) if e.meta["category"] == category]
        _record_comparison(record, f"forgetting_delta[{category}]", paired_comparison(
            [before[i] for i in picked], [after[i] for i in picked], seed=run_seed))
    for row, base in zip(rows, base_rows, strict=True):
        flip = ("fixed" if row["correct"] and not base["correct"] else
                "broken" if base["correct"] and not row["correct"] else "")
        row["extra"].update(base_prediction=base["prediction"], base_correct=base["correct"],
                            flip=flip)
    record.examples(rows, part="general")

    assert comparison.n == len(items)
    assert comparison.fixed - comparison.broken == sum(after) - sum(before)
    delta = comparison.delta
    assert delta.low <= delta.value <= delta.high
    assert 0.0 <= comparison.p_value <= 1.0


def _perplexity(scores):
    logprobs = np.array([lp for lp, _ in scores])
    tokens = np.array([n for _, n in scores], dtype=float)
    return bootstrap(lambda idx: np.exp(-logprobs[idx].sum(axis=1) / tokens[idx].sum(axis=1)),
                     len(scores))


def test_general_text_perplexity(candidate, tunebench, record, run_seed):
    from harness.tasks.general.task import general_text

    texts = general_text()[: TEXTS[tunebench.budget.name]]
    try:
        scores = candidate.loglikelihood_rolling(texts)
    except NotImplementedError as error:
        pytest.skip(str(error))
    base = tunebench.memo(("general text, base", len(texts)),
                          lambda: tunebench.base_candidate.loglikelihood_rolling(texts))
    perplexity, base_perplexity = _perplexity(scores), _perplexity(base)
    record.metric("perplexity", perplexity)
    record.metric("perplexity_base", base_perplexity)
    record.metric("perplexity_delta", perplexity.value - base_perplexity.value)
    nll_delta = paired_difference([-lp / n for lp, n in base], [-lp / n for lp, n in scores],
                                  seed=run_seed)
    record.metric("nll_per_token_delta", nll_delta)

    assert [n for _, n in scores] == [n for _, n in base]
    assert math.isfinite(perplexity.value) and perplexity.value >= 1.0
    assert perplexity.low <= perplexity.value <= perplexity.high


def test_lmeval_probes(candidate, tunebench, record, run_seed):
    names = tunebench.options.forgetting_tasks
    if not names:
        pytest.skip("pass --forgetting-tasks NAMES_OR_YAML to add lm-eval tasks as probes")
    from harness.measure.lmeval import evaluate_tasks

    limit = LMEVAL_LIMIT[tunebench.budget.name]
    base = tunebench.memo(("lm-eval probes, base", tuple(names), limit, run_seed),
                          lambda: evaluate_tasks(tunebench.base_candidate, names, limit=limit,
                                                 seed=run_seed))
    mine = evaluate_tasks(candidate, names, limit=limit, seed=run_seed)
    for task_name, result in mine.items():
        for metric, value in result.metrics.items():
            if not isinstance(value, (int, float)) or "_stderr" in metric:
                continue
            if metric not in tunebench.metrics:
                warnings.warn(f"lm-eval metric {metric!r} of {task_name} is not recorded: the "
                              "metric catalogue does not describe it (docs/hooks.md, "
                              "register_metrics)", stacklevel=1)
                continue
            record.metric(f"{metric}[{task_name}]", value, source="lm-eval")
        before = {i["item_id"]: bool(i["correct"]) for i in base[task_name].items
                  if i["correct"] is not None}
        after = {i["item_id"]: bool(i["correct"]) for i in result.items
                 if i["correct"] is not None}
        ids, a, b = pair_by_id(before, after)
        if not ids:
            continue
        comparison = paired_comparison(a, b, seed=run_seed)
        _record_comparison(record, f"forgetting_delta[{task_name}]", comparison,
                           source="lm-eval")
        record.examples(result.items, part=f"lm-eval.{task_name}")
        assert comparison.n == len(ids)
        assert comparison.delta.low <= comparison.delta.value <= comparison.delta.high
