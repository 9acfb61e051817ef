"""The decision report: prompting vs RAG vs fine-tuning on one task, and the rule that picks.

The rule ("good enough, then cheapest") replaces "try prompting first, then RAG, fine-tune
only if you must" with a measurement: take the best candidate on the task's headline metric
(``accuracy``, else ``gen_accuracy``); every candidate statistically tied with it
(overlapping 95% CIs, ``harness.measure.compare.tied_groups``) is good enough; among those
recommend the cheapest kind of adaptation (the kind each approach declares and each run
records, ``harness.core.kinds.KINDS``: prompting < RAG < parameter-efficient < preference <
distillation < full fine-tuning), then the fewest training seconds. The sentence states the
rule's numbers.
The table gathers the rows practitioners argue about (cost, latency, updatable knowledge,
format consistency, terminology, data needed, maintenance) from what was measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness.core.kinds import KIND_LABELS, KINDS, WEIGHTS_UNCHANGED
from harness.measure.compare import tied_groups
from reports.analysis import candidate_names, catalogue, fmt

UNKNOWN = "unknown"
"""The kind of a run recorded before runs recorded their kind: ranked costliest."""
ACTIONS = {"prompting": "prompt", "retrieval": "use RAG",
           "parameter-efficient": "fine-tune parameter-efficiently",
           "preference": "tune on preferences", "distillation": "distil",
           "full fine-tuning": "fine-tune all weights", UNKNOWN: "adapt"}
LABELS = {**KIND_LABELS, UNKNOWN: "kind not recorded"}
RULE = ("take the best candidate on {metric}; every candidate whose 95% CI overlaps the "
        "best's is good enough; recommend the cheapest kind of those ("
        + " < ".join(KIND_LABELS[k] for k in KINDS) + "), then fewer training seconds)")


def kind_rank(kind: str | None) -> int:
    """Position of ``kind`` in :data:`KINDS` (cheapest 0); unknown kinds come last."""
    return KINDS.index(kind) if kind in KINDS else len(KINDS)


def kind_of(kind: object) -> str:
    """A recorded kind, or :data:`UNKNOWN` for a missing one (``None``, NaN)."""
    return kind if isinstance(kind, str) and kind in KINDS else UNKNOWN


def headline_metric(names: Sequence[str]) -> str | None:
    """The metric the rule compares: the best-ranked recorded metric the catalogue marks
    ``decides`` (``accuracy``, else ``gen_accuracy``)."""
    return next((name for name in catalogue().deciding() if name in set(names)), None)


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

    @property
    def cost(self) -> float:
        return self.train_seconds or 0.0


@dataclass(frozen=True)
class Recommendation:
    choice: Candidate
    best: Candidate
    good_enough: tuple[Candidate, ...]
    metric: str
    rule: str
    sentence: str


def _cost_phrase(choice: Candidate, best: Candidate) -> str:
    spent = f"{choice.cost:,.0f} s vs {best.cost:,.0f} s of training"
    if choice.cost == 0 and best.cost > 0:
        return f"no training cost ({spent})"
    if best.cost > 0 and choice.cost < best.cost:
        return f"{choice.cost / best.cost:.0%} of the training time ({spent})"
    return f"a cheaper kind of adaptation ({LABELS[choice.kind]} vs {LABELS[best.kind]}; {spent})"


def recommend(candidates: Sequence[Candidate], metric: str) -> Recommendation | None:
    """Apply the rule (module docstring) to ``candidates`` (higher ``value`` is better)."""
    if not candidates:
        return None
    by_name = {c.name: c for c in candidates}
    intervals = {c.name: (c.value, c.value if c.low is None else c.low,
                          c.value if c.high is None else c.high) for c in candidates}
    tied = [by_name[name] for name in tied_groups(intervals, higher_is_better=True)[0]]
    best = tied[0]
    choice = min(tied, key=lambda c: (kind_rank(c.kind), c.cost, -c.value, c.name))
    action = f"{ACTIONS[choice.kind]}, with {choice.name}"
    if choice is best:
        others = [c.name for c in tied if c is not best]
        within = (f"the cheapest of the {len(tied)} candidates within its CI "
                  f"({', '.join(others)} also)" if others else
                  "no other candidate is within its CI")
        sentence = (f"{best.name} ({LABELS[best.kind]}) is the best on {metric} "
                    f"({fmt(best.value, best.low, best.high)}) and {within}: {action}.")
    else:
        sentence = (f"{choice.name} ({LABELS[choice.kind]}, {metric} "
                    f"{fmt(choice.value, choice.low, choice.high)}) is within the CI of the "
                    f"best candidate, {best.name} ({LABELS[best.kind]}, "
                    f"{fmt(best.value, best.low, best.high)}), at "
                    f"{_cost_phrase(choice, best)}: {action}.")
    return Recommendation(choice, best, tuple(tied), metric, RULE.format(metric=metric),
                          sentence)


Measured = Mapping[tuple[int, str], tuple[float, float | None, float | None]]
"""``(run_id, metric name) -> (value, ci_low, ci_high)``."""


def measured(long: pd.DataFrame) -> dict[tuple[int, str], tuple[float, float | None,
                                                                 float | None]]:
    """The lookup the table and the rule read (the last row wins for a repeated metric)."""
    def known(v: float) -> float | None:
        return None if pd.isna(v) else float(v)
    return {(int(r), str(n)): (float(v), known(lo), known(hi)) for r, n, v, lo, hi in zip(
        long["run_id"], long["name"], long["value"], long["ci_low"], long["ci_high"],
        strict=True)}


def _cell(cells: Measured, run_id: int, names: Sequence[str], missing: str) -> str:
    for name in names:
        if (run_id, name) in cells:
            shown = fmt(*cells[(run_id, name)])
            return shown if len(names) == 1 else f"{name} {shown}"
    return missing


def _data_needed(cells: Measured, run_id: int, sorts: str, budget: str,
                 config: Mapping[str, Any]) -> str:
    if sorts == "prompting":
        shots = config.get("k")
        return f"{shots} labelled examples in the prompt" if shots else \
            "none: instructions only"
    if sorts == "retrieval":
        return "documents to retrieve from; no labelled examples"
    text = f"the {budget} budget's training set"
    points = sorted((int(name[16:-1]), value[0]) for (run, name), value in cells.items()
                    if run == run_id and name.startswith("data_efficiency[")
                    and name[16:-1].isdigit())
    if points:
        curve = ", ".join(f"{size}: {fmt(value)}" for size, value in points)
        text += f"; accuracy by training examples: {curve}"
    return text


def decision_table(long: pd.DataFrame, names: Mapping[int, str], metric: str | None,
                   configs: Mapping[int, Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """Aspect x candidate table for the runs named in ``names`` (``run_id -> name``),
    cheapest kind first; cells are measured numbers or "not measured"."""
    long = long[long["run_id"].isin(list(names))]
    cells = measured(long)
    runs = long.drop_duplicates("run_id").set_index("run_id")
    kinds = {r: kind_of(runs.at[r, "kind"]) if "kind" in runs else UNKNOWN for r in names}
    order = sorted(names, key=lambda r: (kind_rank(kinds[r]), names[r]))
    rows: dict[str, dict[str, str]] = {}
    for run_id in order:
        col, sorts = names[run_id], kinds[run_id]
        trained = sorts not in WEIGHTS_UNCHANGED
        no_training = "0 (no training)" if not trained else "not measured"
        headline = metric or "accuracy"
        aspects = {
            "kind": LABELS[sorts],
            "initial cost: train_seconds": _cell(cells, run_id, ["train_seconds"], no_training),
            "initial cost: train_cost": _cell(cells, run_id, ["train_cost"], no_training),
            "production latency: latency_p50_ms": _cell(cells, run_id, ["latency_p50_ms"],
                                                        "not measured"),
            "updatable knowledge: new_facts_after": _cell(cells, run_id, ["new_facts_after"],
                                                          "not measured"),
            "style/format consistency": _cell(cells, run_id, ["gen_unmatched", "exact_match"],
                                              "not measured"),
            f"domain terminology: {headline}": _cell(cells, run_id, [headline],
                                                     "not measured"),
            "data needed": _data_needed(cells, run_id, sorts, runs.at[run_id, "budget"],
                                        (configs or {}).get(run_id, {})),
            "maintenance: artifact_bytes": _cell(cells, run_id, ["artifact_bytes"],
                                                 "none" if not trained else "not measured"),
            "maintenance: retraining needed": (
                "yes: retrain when the data or facts change" if trained else
                "no: update the documents" if sorts == "retrieval" else "no: edit the prompt"),
        }
        for aspect, text in aspects.items():
            rows.setdefault(aspect, {})[col] = text
    table = pd.DataFrame(rows).T
    table.index.name = "aspect"
    return table.reset_index()


def candidates_for(long: pd.DataFrame, names: Mapping[int, str],
                   metric: str) -> list[Candidate]:
    """The rule's inputs: each named run's ``metric`` (with CI) and ``train_seconds``."""
    cells = measured(long[long["run_id"].isin(list(names))])
    approaches = dict(zip(long["run_id"], long["approach"], strict=True))
    kinds = (dict(zip(long["run_id"], long["kind"], strict=True)) if "kind" in long else {})
    out = []
    for run_id, name in names.items():
        if (run_id, metric) not in cells:
            continue
        value, low, high = cells[(run_id, metric)]
        seconds = cells.get((run_id, "train_seconds"))
        out.append(Candidate(name, str(approaches[run_id]), value, low, high,
                             None if seconds is None else seconds[0],
                             kind_of(kinds.get(run_id))))
    return out


def report(long: pd.DataFrame, configs: Mapping[int, Mapping[str, Any]] | None = None,
           ) -> tuple[pd.DataFrame, Recommendation | None, str | None]:
    """The decision table, the recommendation and the headline metric for the metric rows
    of one task's candidates (data-efficiency side runs are left out)."""
    main = long[long["train_examples"].isna()] if "train_examples" in long else long
    if main.empty:
        return pd.DataFrame(), None, None
    runs = main.drop_duplicates("run_id")
    names = dict(zip(runs["run_id"].tolist(), candidate_names(runs).tolist(), strict=True))
    metric = headline_metric(main["name"].unique().tolist())
    table = decision_table(main, names, metric, configs)
    found = recommend(candidates_for(main, names, metric), metric) if metric else None
    return table, found, metric
