"""The decision report: prompting vs RAG vs fine-tuning on one task, and the rule that picks.

The rule ("good enough, then cheapest") replaces "try prompting first, then RAG, fine-tune
only if you must" with a measurement:

1. Requirements (``reports.requirements.Requirements``: p95 latency, serving and training
   cost, knowledge updatable without retraining, forgetting) exclude candidates first, each
   exclusion naming the requirement and the measured number (or "not measured").
2. Take the best remaining candidate on the task's headline metric: the one its runs recorded
   (the user's ``task.metric``, else ``accuracy`` for classification, ``gen_accuracy`` for a
   task that scores replies its own way, ``f1`` for other free text:
   ``harness.tasks.base.Task.headline_metric``); in databases older than that, ``accuracy``,
   else ``gen_accuracy``.
3. A candidate is good enough when it is shown non-inferior to the best, as in
   non-inferiority trials (Wellek, 2010, "Testing Statistical Hypotheses of Equivalence and
   Noninferiority"): the lower bound of the 95% paired-bootstrap CI of its difference from
   the best on the same eval items lies at or above ``-margin`` (``reports.rule.judge``).
   The paired test's p-value (McNemar's exact test; for a graded headline such as chrF, a
   paired randomisation test's) is reported as evidence, never as the verdict: "not
   significant" on a small eval set says little. Without per-item rows a candidate falls back
   to a conservative lower bound formed from the two 95% CIs (its CI's low end minus the
   best's high end), and the rule text and the sentence say so.
4. Among the good-enough candidates recommend the cheapest kind of adaptation (the kind each
   approach declares and each run records, ``harness.core.kinds.KINDS``: prompting < RAG <
   parameter-efficient < preference < distillation < full fine-tuning), then the fewest
   training seconds.

The sentence states the numbers the rule used, and the measured pitfalls of the candidate it
picks (forgetting, a perplexity rise, overfitting: ``reports.pitfalls``) with the best
good-enough alternative free of them; :func:`verdict_table` lists every candidate's numbers.
The aspects table is ``reports.decision_table``'s.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from harness.core.kinds import KIND_LABELS, KINDS
from harness.measure.compare import is_binary
from harness.measure.forgetting import Cell
from harness.measure.text_metrics import OPEN_METRICS
from reports.analysis import candidate_names, catalogue, control_approaches, fmt
from reports.data import main_runs
from reports.decision_table import LABELS, UNKNOWN, decision_table, kind_of, kind_rank, measured
from reports.pitfalls import pitfall_text
from reports.requirements import Exclusion, Requirements
from reports.rule import (
    BEST,
    DEFAULT_ALPHA,
    DEFAULT_MARGIN,
    PAIRED,
    UNPAIRED,
    Verdict,
    check_settings,
    judge,
    p_text,
)

ACTIONS = {"prompting": "prompt", "retrieval": "use RAG",
           "parameter-efficient": "fine-tune parameter-efficiently",
           "preference": "tune on preferences", "distillation": "distil",
           "full fine-tuning": "fine-tune all weights", UNKNOWN: "adapt"}
ITEM_SUITES = {"accuracy": ("accuracy.choice", "correct"),
               "gen_accuracy": ("accuracy.generation", "correct"),
               **{name: ("accuracy.generation", name) for name in OPEN_METRICS},
               "llm_judge_score": ("judge.judge", "llm_judge_score")}
"""Where each headline metric's per-item values are: the examples table and the value
(``correct``, or a graded score in the rows' ``extra``). suites/test_accuracy.py records
``part="choice"`` for ``accuracy`` and ``part="generation"`` for the reply metrics;
suites/test_judge.py ``part="judge"``."""
RULE = ("take the best candidate on {metric}{among}; a candidate is good enough when it is "
        "shown non-inferior to the best (Wellek, 2010): the lower bound of the 95% "
        "paired-bootstrap CI of its difference from the best on the same eval items (matched "
        "by item id) is at least -{margin:g}; {test} is reported as evidence (significant "
        "at p < {alpha:g}), not as the verdict; a candidate without per-item rows is judged "
        "on a conservative lower bound from the two 95% CIs instead (its CI's low end minus "
        "the best's high end), with the same margin; recommend the "
        "cheapest kind of the good-enough candidates ("
        + " < ".join(KIND_LABELS[k] for k in KINDS) + "), then fewer training seconds")
ItemLoader = Callable[[str, Sequence[int], str], Mapping[int, Mapping[str, float]]]
"""``(examples suite, run ids, value) -> {run_id: {item_id: value}}`` (``reports.example_data``'s
``item_scores_by_run``; ``value`` is ``correct`` or a graded score's name)."""


def headline_metric(names: Sequence[str], chosen: Sequence[str | None] = ()) -> str | None:
    """The metric the rule compares: the task's headline the runs recorded (``chosen``: the
    user's ``task.metric``, else the task's default, ``Task.headline_metric``) if it was
    measured, else the best-ranked recorded metric the catalogue marks ``decides``
    (``accuracy``, else ``gen_accuracy``), as for databases older than recorded headlines."""
    recorded = set(names)
    picked = [c for c in chosen if isinstance(c, str) and c in recorded]
    if picked:
        return max(set(picked), key=picked.count)
    return next((name for name in catalogue().deciding() if name in recorded), None)




@dataclass(frozen=True)
class Candidate:
    """One candidate on the task's headline metric, with what it cost to build."""

    name: str
    approach: str
    value: float
    low: float | None = None
    high: float | None = None
    train_seconds: float | None = None
    kind: str = UNKNOWN
    """The kind of adaptation its run recorded (``harness.core.kinds.KINDS``)."""
    items: Mapping[str, bool] | None = field(default=None, compare=False, repr=False)
    """``item_id -> correct`` on the headline metric's eval items (``None``: not stored)."""
    measures: Mapping[str, float] = field(default_factory=dict, compare=False, repr=False)
    """Every metric its run recorded (name -> value), read by the requirements."""
    draws: Mapping[str, int] | None = field(default=None, compare=False, repr=False)
    """``item_id -> draw`` when the candidate answered with several draws (few-shot's
    demonstrations): the paired test then resamples draws, then items."""
    cells: Mapping[str, Cell] = field(default_factory=dict, compare=False, repr=False)
    """Every metric its run recorded with its 95% CI (name -> (value, low, high)), read by
    the pitfalls (``reports.pitfalls``), which fall back to ``measures`` (no CIs) without it."""
    sequential: bool = False
    """Its headline was measured with ``--adaptive on`` (stopped when settled): the paired
    test then takes the confidence sequence of the difference (``reports.rule``)."""

    @property
    def cost(self) -> float:
        return self.train_seconds or 0.0


def paired_test_name(candidates: Sequence[Candidate]) -> str:
    """The paired test the rule applies to these candidates' per-item values, as
    ``harness.measure.compare.paired_comparison`` picks it: McNemar's exact test for
    right/wrong values (accuracy, exact match), a paired randomisation test for graded ones."""
    graded = any(c.items and not is_binary(list(c.items.values())) for c in candidates)
    return "a paired randomisation test" if graded else "McNemar's exact test"


@dataclass(frozen=True)
class Recommendation:
    """The rule's outcome; ``choice`` and ``best`` are ``None`` when the requirements
    excluded every candidate."""

    choice: Candidate | None
    best: Candidate | None
    good_enough: tuple[Candidate, ...]
    metric: str
    rule: str
    sentence: str
    considered: tuple[Candidate, ...] = ()
    """The candidates that met the requirements, best first."""
    verdicts: tuple[Verdict, ...] = ()
    """One per considered candidate, in the same order."""
    excluded: tuple[Exclusion, ...] = ()
    requirements: Requirements = field(default_factory=Requirements)
    margin: float = DEFAULT_MARGIN
    alpha: float = DEFAULT_ALPHA

    @property
    def fallbacks(self) -> list[Verdict]:
        """Verdicts reached by the fallback on the two CIs (no per-item rows)."""
        return [v for v in self.verdicts if v.test == UNPAIRED]


def rule_text(metric: str, *, margin: float, alpha: float, requirements: Requirements,
              fallbacks: Sequence[Verdict] = (), test: str = "McNemar's exact test") -> str:
    """The rule as applied: :data:`RULE` with the settings, the paired ``test``
    (:func:`paired_test_name`), the requirements checked first and the candidates judged by
    the fallback on the two CIs."""
    wanted = requirements.describe()
    among = " among those meeting the requirements" if wanted else ""
    text = RULE.format(metric=metric, among=among, margin=margin, alpha=alpha, test=test)
    if wanted:
        text = f"requirements first ({'; '.join(wanted)}); then {text}"
    if fallbacks:
        text += ("; the fallback on the two CIs was used for "
                 + ", ".join(f"{v.name} ({v.fallback})" for v in fallbacks))
    return text


def _cost_phrase(choice: Candidate, best: Candidate) -> str:
    spent = f"{choice.cost:,.0f} s vs {best.cost:,.0f} s of training"
    if choice.cost == 0 and best.cost > 0:
        return f"no training cost ({spent})"
    if best.cost > 0 and choice.cost < best.cost:
        return f"{choice.cost / best.cost:.0%} of the training time ({spent})"
    return f"a cheaper kind of adaptation ({LABELS[choice.kind]} vs {LABELS[best.kind]}; {spent})"


def _described(candidate: Candidate) -> str:
    return (f"{candidate.name} ({LABELS[candidate.kind]}, "
            f"{fmt(candidate.value, candidate.low, candidate.high)})")


def _choice_sentence(found: Recommendation, verdict: Verdict) -> str:
    """The recommendation proper: the choice, and its evidence against the best."""
    choice, best, metric = found.choice, found.best, found.metric
    assert choice is not None and best is not None
    action = f"{ACTIONS[choice.kind]}, with {choice.name}"
    if choice is best:
        others = [c.name for c in found.good_enough if c is not best]
        within = (f"the cheapest of the {len(found.good_enough)} good-enough candidates "
                  f"({', '.join(others)} also good enough)" if others else
                  "no other candidate is good enough")
        return (f"{best.name} ({LABELS[best.kind]}) is the best on {metric} "
                f"({fmt(best.value, best.low, best.high)}) and {within}: {action}.")
    test = f"{verdict.evidence()}; {verdict.reason(margin=found.margin, alpha=found.alpha)}"
    return (f"{choice.name} ({LABELS[choice.kind]}, {metric} "
            f"{fmt(choice.value, choice.low, choice.high)}) is good enough against the best "
            f"candidate, {_described(best)}: {test}; at {_cost_phrase(choice, best)}: "
            f"{action}.")


def _notes(found: Recommendation) -> str:
    """What the sentence must not leave out: fallbacks for other candidates, exclusions."""
    notes = []
    cheaper = [(c, v) for c, v in zip(found.considered, found.verdicts, strict=True)
               if not v.good_enough and found.choice is not None
               and _price(c) < _price(found.choice)]
    if cheaper:
        notes.append("Cheaper but not good enough: " + "; ".join(
            f"{c.name} ({v.evidence()}; {v.reason(margin=found.margin, alpha=found.alpha)})"
            for c, v in cheaper) + ".")
    told = {found.choice.name if found.choice else None, *(c.name for c, _ in cheaper)}
    others = [v for v in found.fallbacks if v.name not in told]
    if others:
        notes.append("The two 95% CIs instead of the paired test for "
                     + "; ".join(f"{v.name} ({v.fallback})" for v in others) + ".")
    notes += [f"{exclusion}." for exclusion in found.excluded]
    return " ".join(notes)


def _price(candidate: Candidate) -> tuple[int, float]:
    """What "cheaper" compares: the kind of adaptation, then training seconds."""
    return kind_rank(candidate.kind), candidate.cost


def _ranked(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Best first on the headline metric; ties go to the cheaper kind, then cost, name."""
    return sorted(candidates, key=lambda c: (-c.value, kind_rank(c.kind), c.cost, c.name))


def recommend(candidates: Sequence[Candidate], metric: str, *,
              margin: float = DEFAULT_MARGIN, alpha: float = DEFAULT_ALPHA,
              requirements: Requirements | None = None) -> Recommendation | None:
    """Apply the rule (module docstring) to ``candidates`` (higher ``value`` is better);
    ``None`` without candidates. ``ValueError`` for a bad ``margin`` or ``alpha``."""
    check_settings(margin, alpha)
    if not candidates:
        return None
    requirements = requirements or Requirements()
    failed = [(c, requirements.failures(c.measures)) for c in candidates]
    excluded = tuple(Exclusion(c.name, tuple(reasons)) for c, reasons in failed if reasons)
    considered = _ranked([c for c, reasons in failed if not reasons])
    if not considered:
        found = Recommendation(
            None, None, (), metric, rule_text(metric, margin=margin, alpha=alpha,
                                              requirements=requirements,
                                              test=paired_test_name(candidates)), "",
            excluded=excluded, requirements=requirements, margin=margin, alpha=alpha)
        return _with_sentence(found, (f"No recommendation: every candidate is excluded by "
                                      f"the requirements ({'; '.join(requirements.describe())})."))
    verdicts = tuple(judge(c, considered[0], margin=margin) for c in considered)
    good = tuple(c for c, v in zip(considered, verdicts, strict=True) if v.good_enough)
    choice = min(good, key=lambda c: (*_price(c), -c.value, c.name))
    rule = rule_text(metric, margin=margin, alpha=alpha, requirements=requirements,
                     fallbacks=[v for v in verdicts if v.test == UNPAIRED],
                     test=paired_test_name(considered))
    found = Recommendation(choice, considered[0], good, metric, rule, "", tuple(considered),
                           verdicts, excluded, requirements, margin, alpha)
    verdict = next(v for c, v in zip(considered, verdicts, strict=True) if c is choice)
    return _with_sentence(found, _choice_sentence(found, verdict))


def _pitfalls(found: Recommendation) -> str:
    """The choice's measured pitfalls, and the cheapest good-enough alternative free of them
    (by the rule's own order)."""
    if found.choice is None:
        return ""
    others = sorted((c for c in found.good_enough if c is not found.choice),
                    key=lambda c: (*_price(c), -c.value, c.name))
    return pitfall_text(found.choice, others, found.metric)


def _with_sentence(found: Recommendation, head: str) -> Recommendation:
    parts = (head, _pitfalls(found), _notes(found))
    return replace(found, sentence=" ".join(p for p in parts if p))


def verdict_table(found: Recommendation) -> pd.DataFrame:
    """One row per candidate: its metric, its difference from the best (with the paired 95%
    CI), the paired p-value (McNemar's, or the randomisation test's for a graded metric), the
    test used and the verdict, which names the lower bound it read (the fallback's
    conservative one without per-item rows); excluded candidates last, with their reasons."""
    rows: list[dict[str, Any]] = []
    graded = paired_test_name(found.considered) != "McNemar's exact test"
    p_column = "paired p (randomisation)" if graded else "McNemar p"
    for candidate, verdict in zip(found.considered, found.verdicts, strict=True):
        paired = verdict.test == PAIRED
        rows.append({
            "candidate": candidate.name, "kind": LABELS[candidate.kind],
            found.metric: fmt(candidate.value, candidate.low, candidate.high),
            "difference vs best": ("-" if verdict.test == BEST else
                                   f"{verdict.difference:+.3f}" + (
                                       f" [{verdict.low:+.3f}, {verdict.high:+.3f}]"
                                       if paired else "")),
            p_column: p_text(verdict.p_value), "test": (
                f"paired ({verdict.shared} items)" if paired else
                f"unpaired CIs: {verdict.fallback}" if verdict.test == UNPAIRED else "-"),
            "good enough": ("yes" if verdict.good_enough else "no") + ", " + verdict.reason(
                margin=found.margin, alpha=found.alpha),
            "chosen": "yes" if candidate is found.choice else ""})
    rows += [{"candidate": e.name, "good enough": f"excluded: {'; '.join(e.reasons)}"}
             for e in found.excluded]
    return pd.DataFrame(rows).fillna("-")


def _draws(labels: Mapping[str, float] | None) -> dict[str, int] | None:
    """Item draws as integers; ``None`` unless they are two or more."""
    if not labels or len(set(labels.values())) < 2:
        return None
    return {item: int(draw) for item, draw in labels.items()}


def _adaptive_runs(long: pd.DataFrame, metric: str) -> set[int]:
    """Runs whose ``metric`` an adaptive evaluation stopped (its interval a confidence
    sequence: ``harness.measure.adaptive``)."""
    if "extra_json" not in long:
        return set()
    rows = long[long["name"] == metric]
    return {int(run) for run, extra in zip(rows["run_id"], rows["extra_json"], strict=True)
            if isinstance(extra, str)
            and json.loads(extra).get("interval") == "confidence sequence"}


def candidates_for(long: pd.DataFrame, names: Mapping[int, str], metric: str,
                   items: Mapping[int, Mapping[str, bool]] | None = None,
                   draws: Mapping[int, Mapping[str, float]] | None = None) -> list[Candidate]:
    """The rule's inputs: each named run's ``metric`` (with CI), ``train_seconds``, every
    recorded metric (for the requirements, and with CIs for the pitfalls), its per-item rows
    (``items``, by run id) and the draw each item was answered with (``draws``, by run id;
    runs with one draw absent)."""
    cells = measured(long[long["run_id"].isin(list(names))])
    approaches = dict(zip(long["run_id"], long["approach"], strict=True))
    kinds = (dict(zip(long["run_id"], long["kind"], strict=True)) if "kind" in long else {})
    sequential = _adaptive_runs(long, metric)
    out = []
    for run_id, name in names.items():
        if (run_id, metric) not in cells:
            continue
        value, low, high = cells[(run_id, metric)]
        seconds = cells.get((run_id, "train_seconds"))
        recorded = {metric_name: cell for (run, metric_name), cell in cells.items()
                    if run == run_id}
        out.append(Candidate(name, str(approaches[run_id]), value, low, high,
                             None if seconds is None else seconds[0],
                             kind_of(kinds.get(run_id)), (items or {}).get(run_id) or None,
                             {n: cell[0] for n, cell in recorded.items()},
                             _draws((draws or {}).get(run_id)), recorded,
                             run_id in sequential))
    return out


def report(long: pd.DataFrame, configs: Mapping[int, Mapping[str, Any]] | None = None, *,
           items: ItemLoader | None = None, requirements: Requirements | None = None,
           margin: float = DEFAULT_MARGIN, alpha: float = DEFAULT_ALPHA,
           ) -> tuple[pd.DataFrame, Recommendation | None, str | None]:
    """The decision table, the recommendation and the headline metric for the metric rows
    of one task's candidates (side runs, ``reports.data.main_runs``, and control approaches
    are left out). ``items`` loads the per-item rows the paired test needs; without it every
    candidate falls back to the two CIs (and the recommendation says so)."""
    check_settings(margin, alpha)
    main = main_runs(long)
    main = main[~main["approach"].isin(control_approaches())]  # never a candidate to pick
    if main.empty:
        return pd.DataFrame(), None, None
    runs = main.drop_duplicates("run_id")
    names = dict(zip(runs["run_id"].tolist(), candidate_names(runs).tolist(), strict=True))
    chosen = main["headline_metric"].tolist() if "headline_metric" in main else []
    metric = headline_metric(main["name"].unique().tolist(), chosen)
    table = decision_table(main, names, metric, configs)
    if metric is None:
        return table, None, None
    suite, value = ITEM_SUITES.get(metric, (None, "correct"))
    loaded = items is not None and suite
    rows = items(suite, [int(r) for r in names], value) if loaded else {}
    draws = items(suite, [int(r) for r in names], "draw") if loaded else {}
    found = recommend(candidates_for(main, names, metric, rows, draws), metric, margin=margin,
                      alpha=alpha, requirements=requirements)
    return table, found, metric
