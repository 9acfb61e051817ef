"""Catastrophic forgetting: general ability before (the base model) and after adaptation.

The same probes are scored for the base model (once per session) and for each candidate, so
every comparison is paired per item (Biderman et al., 2024, "LoRA Learns Less and Forgets
Less", measure forgetting the same way on general benchmarks):

- the built-in ``general`` probes (multiple choice, scored by log-likelihood): accuracy
  delta with a paired-bootstrap CI, McNemar's exact p-value, items fixed and broken, per
  category; every item's before/after result is stored, so reports can show what flipped.
  Two modes (``--forgetting-mode chat|raw|both``, default both): ``chat`` asks each probe
  through the chat template, as the candidate is used; ``raw`` scores ``Question: ...
  Answer: <choice>`` as plain text with no template, as lm-eval's HFLM and published
  forgetting studies score models (metrics named ``..._raw``);
- perplexity on held-out general text (``general_text()``), before and after;
- any lm-eval task (``--forgetting-tasks hellaswag,my_task.yaml``) through the lm-eval
  bridge, paired per document the same way, in the same modes; lm-eval's standard errors
  become the stored CIs.

Forgetting is a change of the weights. A candidate that rewrites prompts (few-shot
demonstrations, retrieved passages) is therefore scored twice in chat mode: through the
weights alone (``forgetting_delta``: zero for prompting, whose weights are the base's) and as
deployed, prompts rewritten (``interference_delta``, metrics named ``..._prompted``), which
measures what its demonstrations or passages do to unrelated questions: interference, not
forgetting. :mod:`harness.measure.forgetting` reads the measurements together.

With ``--time-budget`` a candidate's forgetting may be cut short
(:mod:`harness.runner.time_budget`): it then scores its share of the probes in the seed's
order (and of the texts), paired with the base's scores of the same items, and its metrics
say so (``n_scored``, ``n_available``, ``stopped: budget``).
"""

import copy
import dataclasses
import math
import statistics
import warnings

import numpy as np
import pytest

from harness.core.capabilities import RewritesPrompts
from harness.core.plugins import tasks
from harness.measure.base_scores import kept_scores, probe_hash
from harness.measure.compare import compare_by_id, paired_comparison
from harness.measure.evaluate import score_by_choice, score_by_raw_choice, tied_items
from harness.measure.metrics import (
    CONFIDENCE,
    Estimate,
    accuracy,
    bootstrap,
    paired_difference,
)
from harness.runner.provenance import stable_hash
from harness.runner.time_budget import cut_short, scored_in_time

PROBES = {"smoke": 24, "quick": None, "full": None}
"""General probe items per budget (None: all of them)."""
LMEVAL_LIMIT = {"smoke": 20, "quick": 500, "full": None}
"""Documents per lm-eval task per budget (None: all)."""
TEXTS = {"smoke": 3, "quick": None, "full": None}
"""Paragraphs of general text for perplexity per budget (None: all)."""
Z = statistics.NormalDist().inv_cdf((1 + CONFIDENCE) / 2)
"""Normal quantile turning lm-eval's standard errors into CIs of the stored confidence."""


SENTENCE = "The answer is {}."
"""How ``--probe-answers=sentence`` phrases each choice."""


def as_sentences(example):
    """The probe with every choice (and the answer) phrased as :data:`SENTENCE`."""
    return dataclasses.replace(example, answer=SENTENCE.format(example.answer),
                               choices=tuple(SENTENCE.format(c) for c in example.choices))


def general_probes(tunebench, seed):
    form = tunebench.options.probe_answers

    def load():
        items = tasks().get("general")().load(seed).eval
        limit = PROBES[tunebench.budget.name]
        items = items if limit is None else items[:limit]
        return [as_sentences(e) for e in items] if form == "sentence" else items

    return tunebench.memo(("general probes", seed, form), load)


def modes(tunebench):
    """The probe modes of this session (``--forgetting-mode``)."""
    chosen = tunebench.options.forgetting_mode
    return ("chat", "raw") if chosen == "both" else (chosen,)


def views(candidate):
    """``(view, candidate)`` pairs to score in chat mode: ``""`` is the weights answering
    prompts as they come (forgetting); ``"prompted"`` the deployed candidate when it rewrites
    prompts (interference). A rewriting candidate that cannot be stripped of its rewriting
    (no ``without_rewriting``) is scored as deployed only, and says so."""
    if not isinstance(candidate, RewritesPrompts):
        return [("", candidate)]
    strip = getattr(candidate, "without_rewriting", None)
    if strip is None:
        warnings.warn(f"{type(candidate).__name__} rewrites prompts but has no "
                      "without_rewriting(): its probes are scored as deployed only "
                      "(interference_delta), forgetting_delta is not recorded", stacklevel=2)
        return [("prompted", candidate)]
    return [("", strip()), ("prompted", candidate)]


def name(metric, view):
    """A metric's name in a view: ``forgetting_delta`` -> ``interference_delta`` (prompted)
    or ``forgetting_delta_raw`` (raw); other metrics get a ``_prompted`` / ``_raw`` suffix
    before any lm-eval filter (``exact_match_raw,strict-match``)."""
    if not view:
        return metric
    if view == "prompted" and metric.startswith("forgetting_delta"):
        return "interference_delta" + metric.removeprefix("forgetting_delta")
    head, bracket, tail = metric.partition("[")
    base, comma, filtered = head.partition(",")
    return f"{base}_{view}{comma}{filtered}{bracket}{tail}"


def _record_comparison(record, metric, comparison, **extra):
    record.metric(metric, comparison.delta, fixed=comparison.fixed,
                  broken=comparison.broken, p_value=comparison.p_value, **extra)


def _score(who, items, mode, tunebench=None, base_rows=None):
    """``who``'s rows on the probes; the base model's own (a copy) when ``who`` scores as the
    base by construction (``LMCandidate.scores_as``: zero-shot, the weights of few-shot and
    RAG), which are then not computed again."""
    if base_rows is not None and _scores_as_base(who, tunebench):
        return copy.deepcopy(base_rows)
    if mode == "raw":
        from harness.tasks.general.task import raw_context

        return score_by_raw_choice(who, items, raw_context)  # " The answer is X." if asked
    return score_by_choice(who, items)


def kept_base_scores(tunebench, key, compute):
    """The base model's scores for ``key``, kept across sessions
    (:func:`harness.measure.base_scores.kept_scores`: keyed by the model's version, the
    precision and the scoring code too)."""
    return kept_scores({**key, "model": tunebench.base_model.version,
                        "precision": tunebench.precision.name,
                        "device": str(tunebench.device)}, compute)


def _scores_as_base(who, tunebench):
    same = getattr(who, "scores_as", None)
    return same is not None and same(tunebench.base_candidate)


def _record_probes(record, view, items, base_rows, rows, seed, form, cut):
    before = [r["correct"] for r in base_rows]
    after = [r["correct"] for r in rows]
    comparison = paired_comparison(before, after, seed=seed)
    if view != "prompted":  # the base's accuracy does not depend on the candidate's prompts
        record.metric(name("probe_accuracy_base", view), accuracy(before, seed=seed), **cut)
    record.metric(name("probe_accuracy", view), accuracy(after, seed=seed), **cut)
    record.metric(name("tied_items", view), tied_items(rows))
    _record_comparison(record, name("forgetting_delta", view), comparison, answers=form, **cut)
    record.metric(name("mcnemar_p", view), comparison.p_value)
    record.metric(name("items_fixed", view), comparison.fixed)
    record.metric(name("items_broken", view), comparison.broken)
    for category in sorted({e.meta["category"] for e in items}):
        picked = [i for i, e in enumerate(items) if e.meta["category"] == category]
        _record_comparison(record, name(f"forgetting_delta[{category}]", view),
                           paired_comparison([before[i] for i in picked],
                                             [after[i] for i in picked], seed=seed))
    for row, base in zip(rows, base_rows, strict=True):
        flip = ("fixed" if row["correct"] and not base["correct"] else
                "broken" if base["correct"] and not row["correct"] else "")
        row["extra"].update(base_prediction=base["prediction"], base_correct=base["correct"],
                            flip=flip)
    record.examples(rows, part="general" + (f".{view}" if view else ""))
    return comparison


@pytest.mark.parametrize("mode", ["chat", "raw"])
def test_general_probes(candidate, tunebench, record, run_seed, mode):
    if mode not in modes(tunebench):
        pytest.skip(f"--forgetting-mode={tunebench.options.forgetting_mode}")
    probes = general_probes(tunebench, run_seed)
    base_all = tunebench.memo(("general probes, base", mode, run_seed, len(probes)),
                              lambda: kept_base_scores(
                                  tunebench, {"probes": probe_hash(probes), "mode": mode},
                                  lambda: _score(tunebench.base_candidate, probes, mode)))
    base_of = dict(zip((e.id for e in probes), base_all, strict=True))
    scorers = [("raw", candidate)] if mode == "raw" else views(candidate)

    def score(chunk):
        base_rows = [base_of[e.id] for e in chunk]
        return {view: _score(who, chunk, mode, tunebench, base_rows) for view, who in scorers}

    try:
        items, scored = scored_in_time(tunebench.time_budget, tunebench.adaptive_plan,
                                       probes, run_seed, score)
    except NotImplementedError as error:
        if mode != "raw":
            raise
        pytest.skip(f"raw mode: {error}")
    base_rows = [base_of[e.id] for e in items]
    cut = cut_short(len(items), len(probes))
    for view, rows in scored.items():
        comparison = _record_probes(record, view, items, base_rows, rows, run_seed,
                                    tunebench.options.probe_answers, cut)
        assert comparison.n == len(items) == len(rows)
        assert comparison.fixed - comparison.broken == (
            sum(r["correct"] for r in rows) - sum(r["correct"] for r in base_rows))
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
    base = tunebench.memo(("general text, base", len(texts)), lambda: kept_base_scores(
        tunebench, {"texts": stable_hash(texts), "scores": "rolling log-likelihood"},
        lambda: tunebench.base_candidate.loglikelihood_rolling(texts)))
    budget = tunebench.time_budget
    kept = len(texts) if budget is None else budget.allowed(len(texts))
    base, cut = list(base)[:kept], cut_short(kept, len(texts))
    try:
        scores = (list(base) if _scores_as_base(candidate, tunebench)
                  else candidate.loglikelihood_rolling(texts[:kept]))
    except NotImplementedError as error:
        pytest.skip(str(error))
    perplexity, base_perplexity = _perplexity(scores), _perplexity(base)
    record.metric("perplexity", perplexity, **cut)
    record.metric("perplexity_base", base_perplexity, **cut)
    record.metric("perplexity_delta", perplexity.value - base_perplexity.value)
    nll_delta = paired_difference([-lp / n for lp, n in base], [-lp / n for lp, n in scores],
                                  seed=run_seed)
    record.metric("nll_per_token_delta", nll_delta)

    assert [n for _, n in scores] == [n for _, n in base]
    assert math.isfinite(perplexity.value) and perplexity.value >= 1.0
    assert perplexity.low <= perplexity.value <= perplexity.high


def lmeval_estimate(metrics, metric, n):
    """``metrics[metric]`` with lm-eval's standard error as a normal CI (``None`` when
    lm-eval gave no standard error, e.g. ``"N/A"`` for a single document)."""
    head, comma, filtered = metric.partition(",")
    stderr = metrics.get(f"{head}_stderr{comma}{filtered}")
    value = metrics[metric]
    if not isinstance(stderr, (int, float)) or not math.isfinite(stderr):
        return value, None
    return Estimate(value, value - Z * stderr, value + Z * stderr, n), stderr


def _lmeval_runs(candidate, tunebench, names, limit, seed):
    """``(view, mode, results)`` for the candidate in each probe mode and view."""
    from harness.measure.lmeval import evaluate_tasks

    out = []
    for mode in modes(tunebench):
        if mode == "raw":
            try:
                out.append(("raw", "raw", evaluate_tasks(candidate, names, limit=limit,
                                                         seed=seed, mode="raw")))
            except NotImplementedError as error:
                warnings.warn(f"lm-eval probes in raw mode skipped: {error}", stacklevel=2)
            continue
        out += [(view, "chat", evaluate_tasks(who, names, limit=limit, seed=seed))
                for view, who in views(candidate)]
    return out


def test_lmeval_probes(candidate, tunebench, record, run_seed):
    names = tunebench.options.forgetting_tasks
    if not names:
        pytest.skip("pass --forgetting-tasks NAMES_OR_YAML to add lm-eval tasks as probes")
    from harness.measure.lmeval import evaluate_tasks

    limit = LMEVAL_LIMIT[tunebench.budget.name]
    for view, mode, mine in _lmeval_runs(candidate, tunebench, names, limit, run_seed):
        base = tunebench.memo(
            ("lm-eval probes, base", mode, tuple(names), limit, run_seed),
            lambda mode=mode: evaluate_tasks(tunebench.base_candidate, names, limit=limit,
                                             seed=run_seed, mode=mode))
        for task_name, result in mine.items():
            for metric, value in result.metrics.items():
                if not isinstance(value, (int, float)) or "_stderr" in metric:
                    continue
                if metric not in tunebench.metrics:
                    warnings.warn(f"lm-eval metric {metric!r} of {task_name} is not recorded: "
                                  "the metric catalogue does not describe it (docs/hooks.md, "
                                  "register_metrics)", stacklevel=1)
                    continue
                estimate, stderr = lmeval_estimate(result.metrics, metric,
                                                   len(result.items))
                record.metric(name(f"{metric}[{task_name}]", view), estimate,
                              source="lm-eval", stderr=stderr)
            before = {i["item_id"]: bool(i["correct"]) for i in base[task_name].items
                      if i["correct"] is not None}
            after = {i["item_id"]: bool(i["correct"]) for i in result.items
                     if i["correct"] is not None}
            comparison = compare_by_id(before, after, seed=run_seed)
            if comparison is None:
                continue
            _record_comparison(record, name(f"forgetting_delta[{task_name}]", view),
                               comparison, source="lm-eval")
            record.examples(result.items, part=f"lm-eval.{task_name}"
                            + (f".{view}" if view else ""))
            assert comparison.n == len(before.keys() & after.keys())
            assert comparison.delta.low <= comparison.delta.value <= comparison.delta.high
