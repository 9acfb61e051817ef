"""The decision report's table: the aspects practitioners argue about, per candidate.

Rows (cost, production latency and serving cost, a distilled student's beside its
teacher's, forgetting, updatable knowledge, format consistency, terminology, data needed,
maintenance) are filled from what was measured, or say "not measured"; columns are the
candidates, cheapest kind of adaptation first (``harness.core.kinds.KINDS``). The rule that
picks among them is ``reports.decision``'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from harness.core.kinds import KIND_LABELS, KINDS, WEIGHTS_UNCHANGED
from harness.measure.forgetting import VERDICT_METRICS, read_forgetting
from reports.analysis import fmt

UNKNOWN = "unknown"
"""The kind of a run recorded before runs recorded their kind: ranked costliest."""
LABELS = {**KIND_LABELS, UNKNOWN: "kind not recorded"}


def kind_rank(kind: str | None) -> int:
    """Position of ``kind`` in :data:`KINDS` (cheapest 0); unknown kinds come last."""
    return KINDS.index(kind) if kind in KINDS else len(KINDS)


def kind_of(kind: object) -> str:
    """A recorded kind, or :data:`UNKNOWN` for a missing one (``None``, NaN)."""
    return kind if isinstance(kind, str) and kind in KINDS else UNKNOWN


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


def _against_teacher(cells: Measured, run_id: int, name: str, speedup: str | None = None) -> str:
    """``name``'s cell, and for a distilled student its teacher's number (the distillation
    suite's ``teacher_<name>``) and the measured speedup."""
    text = _cell(cells, run_id, [name], "not measured")
    teacher = cells.get((run_id, f"teacher_{name}"))
    if teacher is None:
        return text
    text += f"; teacher {fmt(*teacher)}"
    if speedup and (run_id, speedup) in cells:
        text += f", {fmt(*cells[(run_id, speedup)])}x faster"
    return text


def _forgetting(cells: Mapping, run_id: int) -> str:
    """Every forgetting measurement read together: which one a candidate fails on
    (:func:`harness.measure.forgetting.read_forgetting`)."""
    found = {name: cells[(run_id, name)] for name in VERDICT_METRICS if (run_id, name) in cells}
    return read_forgetting(found).sentence


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
            "production latency: latency_p50_ms": _against_teacher(
                cells, run_id, "latency_p50_ms", speedup="latency_speedup"),
            "serving cost: cost_per_1k_requests": _against_teacher(
                cells, run_id, "cost_per_1k_requests"),
            "forgetting (probes and perplexity)": _forgetting(cells, run_id),
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
