"""Sweep points of experiment matrices (``--sweep``), read for the dashboard's Sweeps page.

A sweep is the finished runs of one approach/task/model/budget over the same swept fields
(``runs.sweep_json``, written by ``harness.runner.matrix``); the loaders here build on
:mod:`reports.data`'s read-only queries and are called through ``reports.ui`` the same way.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from harness.runner.matrix import point_label, swept_field, value_text
from reports.data import (
    _LATEST,
    _MAIN_RUN,
    _RUN_COLUMNS,
    _frame,
    _newer_columns,
    _point_labels,
    _run_filters,
    _swept,
    metrics,
    parse_sweep,
    snapshot,
    sweep_name,
)

_SWEEP_RUN_COLUMNS = ["run_id", "approach", "task", "model", "budget", "seed", "kind",
                      "label", "sweep", "fields", "point"]


def _value_key(value: Any) -> tuple[int, float, str]:
    """Numbers in numeric order, then anything else (booleans, text) in text order."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def sweep_runs(
    conn: sqlite3.Connection, *, filters: Mapping[str, Sequence[Any]] | None = None,
    latest_only: bool = True,
) -> pd.DataFrame:
    """The finished sweep points (runs whose ``sweep_json`` is not empty; side runs of
    ``--data-sizes`` and ``--label-noise`` left out), one row each.

    Runs of one approach/task/model/budget over the same swept fields form one sweep, named
    ``sweep`` (``dpo[beta]``, :func:`sweep_name`); ``fields`` are its swept fields, comma-joined
    in key order and written as in the label (``beta``; ``dpo.beta`` in ``lora+dpo``);
    ``point`` is the run's point as a JSON object of those fields. Rows are ordered by task,
    model, budget and sweep, then by the swept values (numerically), then by seed.
    """
    clauses, params = _run_filters(filters)
    clauses += ["r.status = 'finished'", _swept(conn), _MAIN_RUN]
    if latest_only:
        clauses.append(f"r.id IN ({_LATEST})")
    runs = _point_labels(_frame(conn, (
        f"SELECT r.id AS run_id, {_RUN_COLUMNS}, {_newer_columns(conn)} FROM runs r "
        f"WHERE {' AND '.join(clauses)} ORDER BY r.id"), params))
    sweeps = [parse_sweep(text) for text in runs["sweep_json"]]
    points = [{swept_field(a, key): value for key, value in sweep.items()}
              for a, sweep in zip(runs["approach"], sweeps, strict=True)]
    runs["sweep"] = [sweep_name(a, sweep)
                     for a, sweep in zip(runs["approach"], sweeps, strict=True)]
    runs["fields"] = [",".join(point) for point in points]
    runs["point"] = [json.dumps(point) for point in points]
    order = sorted(range(len(runs)), key=lambda k: (
        str(runs["task"].iat[k]), str(runs["model"].iat[k]), str(runs["budget"].iat[k]),
        runs["sweep"].iat[k], tuple(_value_key(v) for v in points[k].values()),
        int(runs["seed"].iat[k]), int(runs["run_id"].iat[k])))
    return runs.iloc[order][_SWEEP_RUN_COLUMNS].reset_index(drop=True)


def sweep_catalog(conn: sqlite3.Connection) -> pd.DataFrame:
    """One row per sweep (task, model, budget, approach, ``sweep``, ``fields``) with its
    number of points, seeds and runs, in :func:`sweep_runs` order."""
    runs = sweep_runs(conn)
    keys = ["task", "model", "budget", "approach", "sweep", "fields"]
    if runs.empty:
        return pd.DataFrame(columns=[*keys, "points", "seeds", "runs"])
    return runs.groupby(keys, sort=False).agg(
        points=("point", "nunique"), seeds=("seed", "nunique"),
        runs=("run_id", "count")).reset_index()


def sweep_points(
    conn: sqlite3.Connection, *, names: Sequence[str] | None = None,
    filters: Mapping[str, Sequence[Any]] | None = None, latest_only: bool = True,
) -> pd.DataFrame:
    """Metric rows of the finished sweep points, one per (run, metric): the
    :func:`sweep_runs` columns and ``suite``, ``name``, ``value``, ``ci_low``, ``ci_high``,
    ``n``, ``higher_is_better``, in :func:`sweep_runs` order."""
    measured = ["run_id", "suite", "name", "value", "ci_low", "ci_high", "n", "higher_is_better"]
    with snapshot(conn):  # the runs and their metric rows as of one moment
        runs = sweep_runs(conn, filters=filters, latest_only=latest_only)
        if runs.empty:
            return pd.DataFrame(columns=[*_SWEEP_RUN_COLUMNS, *measured[1:]])
        rows = metrics(conn, names=names, run_ids=runs["run_id"].tolist(), latest_only=False)
    return runs.merge(rows[measured], on="run_id", how="inner")


def sweep_axis(points: pd.DataFrame, field: str) -> pd.DataFrame:
    """The sweep points that swept ``field``, with ``swept`` (its value as a number, NaN if it
    is none), ``swept_text`` (as in the label) and ``series``: the approach with the point's
    other swept fields (``rlhf[learning_rate=0.0001]``; the bare approach when ``field`` is the
    only one), i.e. one line per approach sweep and per value of the other fields."""
    values = points["point"].map(parse_sweep)
    has = values.map(lambda point: field in point)
    out = points[has].copy()
    chosen = values[has]
    out["swept"] = [key[1] if key[0] == 0 else float("nan")
                    for key in (_value_key(p[field]) for p in chosen)]
    out["swept_text"] = [value_text(p[field]) for p in chosen]
    out["series"] = [point_label(a, {k: v for k, v in p.items() if k != field})
                     for a, p in zip(out["approach"], chosen, strict=True)]
    return out


def seed_means(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Mean over seeds of each (``keys``, metric ``name``): ``value`` and the seeds' 95% CI
    bounds ``ci_low``/``ci_high`` averaged (NaN where none is stored), ``seeds`` counted; in
    order of first appearance."""
    columns = [*keys, "name", "value", "ci_low", "ci_high", "seeds"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    numbers = frame.assign(**{c: pd.to_numeric(frame[c], errors="coerce")
                              for c in ("value", "ci_low", "ci_high")})
    means = numbers.groupby([*keys, "name"], sort=False, dropna=False).agg(
        value=("value", "mean"), ci_low=("ci_low", "mean"), ci_high=("ci_high", "mean"),
        seeds=("seed", "nunique")).reset_index()
    return means[columns]


def sweep_means(axis: pd.DataFrame) -> pd.DataFrame:
    """:func:`seed_means` of :func:`sweep_axis` rows per ``series`` and swept value, with
    ``rank``: the point's place along its series in the order of the swept value."""
    means = seed_means(axis, ["series", "swept", "swept_text"])
    means["rank"] = means.groupby(["series", "name"], sort=False).cumcount()
    return means


def metric_pairs(means: pd.DataFrame, x: str, y: str, keys: Sequence[str]) -> pd.DataFrame:
    """Rows of ``means`` (:func:`seed_means`) holding both metrics ``x`` and ``y``, side by side
    as ``x``, ``x_low``, ``x_high``, ``y``, ``y_low``, ``y_high``."""
    def one(name: str, axis: str) -> pd.DataFrame:
        part = means[means["name"] == name][[*keys, "value", "ci_low", "ci_high"]]
        return part.rename(columns={"value": axis, "ci_low": f"{axis}_low",
                                    "ci_high": f"{axis}_high"})
    return one(x, "x").merge(one(y, "y"), on=list(keys), how="inner")
