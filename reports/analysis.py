"""Pure computations behind the dashboard views: labels, leaderboard, ties, Pareto, staleness.

DataFrames in, DataFrames out, no I/O and no Streamlit, so each is tested on hand-made data.
Ties use ``harness.measure.compare.tied_groups`` (overlapping 95% intervals); the Pareto frontier
follows PEFT's ``method_comparison`` app, which plots any two metrics and highlights the
non-dominated methods, here respecting each metric's direction (``higher_is_better``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from harness.measure.catalogue import Catalogue
from harness.measure.compare import tied_groups

IDENTITY = ("task", "model", "budget", "seed")
"""Run columns that, with the label, tell candidates apart."""


@functools.cache
def catalogue() -> Catalogue:
    """The metric catalogue (built-in metrics and every loaded plugin's), read once."""
    from harness.core.plugins import metrics

    return metrics()


@functools.cache
def control_approaches() -> frozenset[str]:
    """Names of the registered control approaches (``Approach.control``: deliberately broken
    candidates that check a measurement), which no recommendation should pick."""
    from harness.core.plugins import approaches

    registry = approaches()
    return frozenset(n for n in registry.names() if getattr(registry.get(n), "control", False))


def headline_metrics() -> list[str]:
    """Metrics shown first when recorded, by the catalogue's headline rank (the rest stay
    selectable)."""
    return catalogue().headline()


def fmt(value: float | None, low: float | None = None, high: float | None = None) -> str:
    """``0.812 [0.770, 0.850]``; large numbers with thousands separators; ``-`` if missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    def one(v: float) -> str:
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}" if abs(v) >= 10 else f"{v:.3f}"
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return f"{int(value):,}" if float(value).is_integer() and value else one(value)
    return f"{one(value)} [{one(low)}, {one(high)}]"


def ci_text(low: pd.Series, high: pd.Series) -> pd.Series:
    """``[low, high]`` texts (``-`` where there is no interval), formatted like ``fmt``."""
    def one(v: float) -> str:
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}" if abs(v) >= 10 else f"{v:.3f}"
    known = low.notna() & high.notna()
    text = pd.Series("-", index=low.index, dtype=object)
    text[known] = [f"[{one(lo)}, {one(hi)}]" for lo, hi in
                   zip(low[known].tolist(), high[known].tolist(), strict=True)]
    return text


def extra_field(extra_json: str | None, key: str) -> object:
    """``key`` of a stored ``extra_json`` object (``None`` if absent or not valid JSON)."""
    try:
        extra = json.loads(extra_json or "{}")
    except ValueError:
        return None
    return extra.get(key) if isinstance(extra, dict) else None


def higher_is_better(frame: pd.DataFrame, name: str) -> bool | None:
    """The recorded direction of metric ``name`` in a metrics frame (``None`` if unknown)."""
    known = frame.loc[frame["name"] == name, "higher_is_better"].dropna()
    return None if known.empty else bool(known.iloc[-1])


def metric_direction(name: str, recorded: bool | None) -> bool:
    """The recorded direction, else the metric catalogue's; higher is better for a metric
    neither describes (the views let the user flip it)."""
    if recorded is not None:
        return recorded
    described = catalogue().direction(name)
    return True if described is None else described


def candidate_names(frame: pd.DataFrame, vary: Sequence[str] = IDENTITY) -> pd.Series:
    """A readable name per row: the label, plus whichever of the ``vary`` columns
    (task/model/budget/seed) differ within ``frame``, plus ``#run_id`` where two runs would
    still share a name and an identity (re-runs)."""
    names = frame["label"].astype(str).reset_index(drop=True)
    for column in vary:
        if column in frame and frame[column].nunique() > 1:
            names = names + f" {column}=" + frame[column].astype(str).reset_index(drop=True)
    if "run_id" in frame:
        keys = [names, *(frame[c].astype(str).reset_index(drop=True)
                         for c in IDENTITY if c in frame)]
        runs = frame["run_id"].reset_index(drop=True)
        shared = runs.groupby(keys).transform("nunique") > 1
        names = names.where(~shared, names + " #" + runs.astype(str))
    return names


def names_by_run(frame: pd.DataFrame) -> dict[int, str]:
    """``run_id -> candidate name`` (:func:`candidate_names`) for the runs in a metrics
    frame."""
    runs = frame.drop_duplicates("run_id")
    return dict(zip(runs["run_id"].tolist(), candidate_names(runs).tolist(), strict=True))


def tie_marks(rows: pd.DataFrame, higher: bool = True) -> pd.DataFrame:
    """``tied_group`` (1 = the best group) and ``tied_with_best`` for rows of one metric,
    grouping candidates within each task/model/budget by overlapping CIs."""
    group_of: dict[str, int] = {}
    low, high = rows["ci_low"].fillna(rows["value"]), rows["ci_high"].fillna(rows["value"])
    frame = rows.assign(key=rows["run_id"].astype(str), low=low, high=high)
    for _, part in frame.groupby(["task", "model", "budget"], dropna=False):
        intervals = dict(zip(part["key"], zip(part["value"], part["low"], part["high"],
                                              strict=True), strict=True))
        for k, group in enumerate(tied_groups(intervals, higher_is_better=higher), start=1):
            group_of.update(dict.fromkeys(group, k))
    out = rows[["run_id"]].copy()
    out["tied_group"] = frame["key"].map(group_of).to_numpy()
    out["tied_with_best"] = out["tied_group"] == 1
    return out


def leaderboard(long: pd.DataFrame, shown: Sequence[str], chosen: str) -> pd.DataFrame:
    """One row per run: identity, each ``shown`` metric (value and a ``CI`` text column; a
    verdict text for verdict metrics) and the ties on ``chosen``, best first."""
    keys = ["run_id", "label", "task", "model", "budget", "seed", "status"]
    runs = long.drop_duplicates("run_id")[keys].set_index("run_id")
    table = runs.copy()
    for name in shown:
        rows = long[long["name"] == name].drop_duplicates("run_id", keep="last")
        rows = rows.set_index("run_id")
        if rows["extra_json"].str.contains('"verdict"', regex=False).any():
            verdicts = rows["extra_json"].map(lambda e: extra_field(e, "verdict"))
            table[name] = verdicts.reindex(table.index)
            continue
        table[name] = rows["value"].reindex(table.index)
        table[f"{name} CI"] = ci_text(rows["ci_low"], rows["ci_high"]).reindex(
            table.index).fillna("-")
    higher = metric_direction(chosen, higher_is_better(long, chosen))
    chosen_rows = long[long["name"] == chosen].drop_duplicates("run_id", keep="last")
    if not chosen_rows.empty:
        ties = tie_marks(chosen_rows, higher).set_index("run_id")
        table["tied group"] = ties["tied_group"].reindex(table.index).astype("Int64")
        table["tied with best"] = ties["tied_with_best"].astype("boolean").reindex(table.index)
        if chosen in table and pd.api.types.is_numeric_dtype(table[chosen]):
            table = table.sort_values(chosen, ascending=not higher, na_position="last")
    table = table.reset_index()
    table.insert(1, "candidate", candidate_names(table, vary=()).to_numpy())
    first = ["run_id", "candidate", "tied with best", "tied group"]
    order = [c for c in first if c in table] + [c for c in table if c not in first]
    return table[order].drop(columns=["label"])


def pareto_frontier(x: Sequence[float], y: Sequence[float], *, x_higher: bool,
                    y_higher: bool) -> np.ndarray:
    """Which points no other point dominates (at least as good on both metrics and strictly
    better on one), each metric read in its own direction."""
    xs = np.asarray(x, dtype=float) * (1 if x_higher else -1)
    ys = np.asarray(y, dtype=float) * (1 if y_higher else -1)
    keep = np.ones(len(xs), dtype=bool)
    for i in range(len(xs)):
        if np.isnan(xs[i]) or np.isnan(ys[i]):
            keep[i] = False
            continue
        dominated = (xs >= xs[i]) & (ys >= ys[i]) & ((xs > xs[i]) | (ys > ys[i]))
        keep[i] = not dominated.any()
    return keep


def pareto_table(long: pd.DataFrame, x: str, y: str, x_higher: bool,
                 y_higher: bool) -> pd.DataFrame:
    """Runs that have both metrics, with their CIs and ``frontier`` membership."""
    cols = ["run_id", "value", "ci_low", "ci_high"]
    left = long[long["name"] == x].drop_duplicates("run_id", keep="last")
    right = long[long["name"] == y].drop_duplicates("run_id", keep="last")[cols]
    both = left.merge(right, on="run_id", suffixes=("_x", "_y"))
    both = both.rename(columns={"value_x": "x", "value_y": "y", "ci_low_x": "x_low",
                                "ci_high_x": "x_high", "ci_low_y": "y_low",
                                "ci_high_y": "y_high"})
    both["candidate"] = candidate_names(both).to_numpy()
    both["frontier"] = pareto_frontier(both["x"], both["y"], x_higher=x_higher,
                                       y_higher=y_higher)
    return both[["run_id", "candidate", "label", "task", "model", "budget", "seed", "x",
                 "x_low", "x_high", "y", "y_low", "y_high", "frontier"]]


def stale_runs(runs: pd.DataFrame) -> pd.Series:
    """A run is stale when a newer run of the same approach/task/model/seed/budget/config
    (``config_hash``) has a different ``code_version`` or ``data_hash``."""
    keys = ["approach", "task", "model", "seed", "budget", "config_hash"]
    newest_first = runs.sort_values(["started_at", "run_id"], ascending=False)
    pair = pd.Series(pd.factorize(newest_first["code_version"].astype(str) + "\0"
                                  + newest_first["data_hash"].astype(str))[0],
                     index=newest_first.index)
    frame = newest_first[keys].assign(pair=pair)
    grouped = frame.groupby(keys, sort=False, dropna=False)["pair"]
    # Over the strictly newer runs of the same candidate: the smallest and largest pair id.
    frame["low"], frame["high"] = grouped.cummin(), grouped.cummax()
    shifted = frame.groupby(keys, sort=False, dropna=False)[["low", "high"]].shift(1)
    stale = shifted["low"].notna() & ((shifted["low"] != pair) | (shifted["high"] != pair))
    return stale.reindex(runs.index).astype(bool)


def metric_matrix(long: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """Candidates x ``names`` of formatted cells (``value [low, high]``)."""
    rows = long[long["name"].isin(names)].copy()
    rows["cell"] = [fmt(v, lo, hi) for v, lo, hi in
                    zip(rows["value"], rows["ci_low"], rows["ci_high"], strict=True)]
    runs = long.drop_duplicates("run_id").set_index("run_id")
    names_by_run = pd.Series(candidate_names(runs.reset_index()).to_numpy(), index=runs.index)
    table = rows.pivot_table(index="run_id", columns="name", values="cell", aggfunc="last")
    table = table.reindex(columns=[n for n in names if n in table.columns]).fillna("-")
    table.index = names_by_run.reindex(table.index).to_numpy()
    table.index.name = "candidate"
    return table.reset_index()
