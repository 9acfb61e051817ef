"""Read-only loading of a tunebench results database into pandas DataFrames.

The schema is ``harness.runner.store``'s (its ``SCHEMA`` is the contract). The file is opened with
SQLite's ``mode=ro`` URI and ``PRAGMA query_only``, so nothing here can write to it; stored
text (configs, extra fields) is only ever parsed as JSON, never executed or unpickled.
Each function loads only what one view needs: the leaderboard reads ``metrics`` joined with
``runs`` and never ``examples``; example rows come a page at a time (``LIMIT``/``OFFSET``).
Plain functions without Streamlit, so tests and ``reports.export`` call them directly; the
app caches them (``reports.ui``). A function that reads with several queries reads one snapshot
(:func:`snapshot`), so a runner writing meanwhile never shows it half a run. Sweep points (runs
of an experiment matrix, ``--sweep``, their swept options in ``runs.sweep_json``) are labelled
by their point (``dpo[beta=0.3]``) wherever a run is named, and grouped into sweeps by
:func:`sweep_runs`.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from harness.runner.matrix import point_label, swept_field
from harness.runner.store import open_read_only
from harness.runner.summary import SIDE_RUN_FIELDS

DEFAULT_DB = Path("results/tunebench.db")
ENV_VAR = "TUNEBENCH_RESULTS"
FILL_HINT = ("make bench", "pytest suites/ --approach=zero-shot,few-shot --task=sentiment")
"""Commands that fill a results database (shown by every empty state)."""

_TRAIN_N = ("CASE WHEN json_valid(r.config_json) "
            "THEN json_extract(r.config_json, '$.train_examples') END")
_NOISE = ("CASE WHEN json_valid(r.config_json) "
          "THEN json_extract(r.config_json, '$.label_noise') END")
_MAIN_RUN = f"({_TRAIN_N} IS NULL AND {_NOISE} IS NULL)"
"""A run that is no side run (:data:`harness.runner.summary.SIDE_RUN_FIELDS`)."""
_HEADLINE = ("CASE WHEN json_valid(r.info_json) "
             "THEN json_extract(r.info_json, '$.headline_metric') END")
"""The run's headline metric (``Task.headline_metric``; NULL in databases older than it)."""
_RUN_COLUMNS = (
    "r.approach, r.task, r.model, r.seed, r.budget, r.status, r.config_hash, "
    f"{_TRAIN_N} AS train_examples, {_NOISE} AS label_noise, {_HEADLINE} AS headline_metric, "
    f"r.approach || COALESCE(' (n=' || {_TRAIN_N} || ')', '') "
    f"|| COALESCE(' (noise=' || {_NOISE} || ')', '') AS label"
)
"""Run columns joined onto metric rows; ``label`` names side runs ("lora (n=64)",
"lora (noise=0.2)") the way ``harness.runner.summary`` does, and :func:`_point_labels` then
names sweep points by their point ("dpo[beta=0.3]")."""
_LATEST = ("SELECT MAX(id) FROM runs GROUP BY approach, task, model, seed, budget, "
           "config_hash")


def resolve_path(argv: Sequence[str], environ: Mapping[str, str]) -> Path:
    """The database path: ``--db PATH`` (or ``--db=PATH``) in ``argv``, else the
    ``TUNEBENCH_RESULTS`` environment variable, else ``results/tunebench.db``."""
    for k, arg in enumerate(argv):
        if arg == "--db" and k + 1 < len(argv):
            return Path(argv[k + 1])
        if arg.startswith("--db="):
            return Path(arg.removeprefix("--db="))
    return Path(environ.get(ENV_VAR) or DEFAULT_DB)


def connect(path: str | Path) -> sqlite3.Connection:
    """Open ``path`` read-only (``FileNotFoundError`` if it does not exist: SQLite would
    otherwise report an unhelpful "unable to open database file")."""
    file = Path(path).resolve()
    if not file.is_file():
        raise FileNotFoundError(f"no results database at {file}")
    return open_read_only(file, timeout=10)


@contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Every query inside reads the database as it was at the first one (an SQLite read
    transaction; in WAL mode writers go on meanwhile). Nested uses share the outer snapshot."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.rollback()  # nothing to keep: the connection only reads


def _one_snapshot(function: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``function(conn, ...)`` inside :func:`snapshot`: its queries agree with each other
    (metric rows and their runs, a page and its count) while a runner writes."""
    @functools.wraps(function)
    def wrapper(conn: sqlite3.Connection, *args: Any, **kwargs: Any) -> Any:
        with snapshot(conn):
            return function(conn, *args, **kwargs)
    return wrapper


def _frame(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    try:
        return pd.read_sql_query(sql, conn, params=list(params))
    except pd.errors.DatabaseError as error:  # pandas wraps sqlite3's error: unwrap it
        raise sqlite3.DatabaseError(str(error.__cause__ or error)) from error


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


def run_count(conn: sqlite3.Connection) -> int:
    """Number of runs; 0 for a database without the ``runs`` table (an empty file)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'").fetchone()
    return conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] if exists else 0


def filter_options(conn: sqlite3.Connection) -> dict[str, list[Any]]:
    """Distinct tasks, models, seeds, budgets and approaches, for the filter widgets."""
    return {column: [row[0] for row in conn.execute(
        f"SELECT DISTINCT {column} FROM runs ORDER BY {column}")]
        for column in ("task", "model", "seed", "budget", "approach")}


def busiest_task(conn: sqlite3.Connection) -> str | None:
    """The task with the most runs that are not sweep points, then with the most runs (the
    pages open on it; a sweep's many cells of one approach do not make its task the one every
    comparison page opens on)."""
    row = conn.execute(
        f"SELECT task FROM runs r GROUP BY task ORDER BY SUM(NOT ({_swept(conn)})) DESC, "
        "COUNT(*) DESC, task LIMIT 1").fetchone()
    return row[0] if row else None


@_one_snapshot
def scope_options(conn: sqlite3.Connection, task: str) -> dict[str, Any]:
    """Models, budgets and seeds run on ``task``, and those of its latest run."""
    out: dict[str, Any] = {column: [row[0] for row in conn.execute(
        f"SELECT DISTINCT {column} FROM runs WHERE task = ? ORDER BY {column}", (task,))]
        for column in ("task", "model", "budget", "seed")}
    latest = conn.execute("SELECT model, budget, seed FROM runs WHERE task = ? "
                          "ORDER BY started_at DESC, id DESC LIMIT 1", (task,)).fetchone()
    out["latest"] = dict(zip(("model", "budget", "seed"), latest or (None,) * 3, strict=True))
    return out


def _run_columns(conn: sqlite3.Connection) -> set[str]:
    return {row[1] for row in conn.execute("PRAGMA table_info(runs)")}


def _newer_columns(conn: sqlite3.Connection) -> str:
    """``r.kind, r.sweep_json``, with NULL and ``'{}'`` for databases written before runs
    recorded their kind (schema 2) or sweep point (schema 3)."""
    columns = _run_columns(conn)
    kind = "r.kind" if "kind" in columns else "NULL AS kind"
    sweep = "r.sweep_json" if "sweep_json" in columns else "'{}' AS sweep_json"
    return f"{kind}, {sweep}"


def _swept(conn: sqlite3.Connection) -> str:
    """SQL true for a sweep point (false everywhere in a database from before sweeps)."""
    return "r.sweep_json != '{}'" if "sweep_json" in _run_columns(conn) else "0"


def parse_sweep(text: str | None) -> dict[str, Any]:
    """A stored ``sweep_json`` in its stored key order (``{}`` if it is no JSON object)."""
    try:
        sweep = json.loads(text or "{}")
    except ValueError:
        return {}
    return sweep if isinstance(sweep, dict) else {}


def sweep_name(approach: str, sweep: Mapping[str, Any]) -> str:
    """The sweep a point belongs to, its approach and swept fields: ``dpo[beta]``."""
    return f"{approach}[{','.join(swept_field(approach, key) for key in sweep)}]"


def _point_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """``label`` of each sweep point (``sweep_json`` not empty) rewritten to its point label,
    a data-efficiency suffix kept (``dpo[beta=0.3] (n=64)``)."""
    swept = frame["sweep_json"].notna() & (frame["sweep_json"] != "{}")
    if swept.any():
        rows = frame.loc[swept]
        frame.loc[swept, "label"] = [
            point_label(approach, parse_sweep(text)) + str(label)[len(approach):]
            for approach, text, label in zip(rows["approach"], rows["sweep_json"],
                                             rows["label"], strict=True)]
    return frame


def runs(conn: sqlite3.Connection, run_ids: Sequence[int] | None = None) -> pd.DataFrame:
    """Every run (or those in ``run_ids``) with its provenance, newest last."""
    where = f"WHERE r.id IN ({_marks(run_ids)})" if run_ids is not None else ""
    columns = _run_columns(conn)
    precision = "r.precision" if "precision" in columns else "'fp32' AS precision"  # schema 1
    return _point_labels(_frame(conn, (
        f"SELECT r.id AS run_id, r.session, {_RUN_COLUMNS}, {_newer_columns(conn)}, "
        "r.data_hash, r.model_version, "
        f"r.code_version, r.device, {precision}, r.host, r.error, r.started_at, r.finished_at "
        f"FROM runs r {where} ORDER BY r.started_at, r.id"), run_ids or ()))


def run_details(conn: sqlite3.Connection, run_id: int) -> dict[str, Any]:
    """One run's full row, its JSON fields as text (the caller parses them)."""
    conn_row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,))
    names = [d[0] for d in conn_row.description]
    row = conn_row.fetchone()
    return dict(zip(names, row, strict=True)) if row else {}


def run_configs(conn: sqlite3.Connection, run_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """``run_id -> config`` (parsed JSON; ``{}`` where it is not a JSON object)."""
    return run_json_field(conn, run_ids, "config")


def metric_catalog(conn: sqlite3.Connection) -> pd.DataFrame:
    """Each recorded (suite, metric name): its direction (1 higher is better, 0 lower,
    NaN unknown) and how many times it was recorded."""
    return _frame(conn, (
        "SELECT suite, name, MAX(higher_is_better) AS higher_is_better, "
        "COUNT(*) AS runs FROM metrics GROUP BY suite, name ORDER BY suite, name"))


def _run_filters(filters: Mapping[str, Sequence[Any]] | None) -> tuple[list[str], list[Any]]:
    """SQL clauses on ``runs r`` (and their parameters) keeping the allowed values of each
    run column in ``filters``."""
    clauses, params = ["1"], []
    for column, allowed in (filters or {}).items():
        if column not in {"task", "model", "seed", "budget", "approach"}:
            raise ValueError(f"cannot filter runs by {column!r}")
        clauses.append(f"r.{column} IN ({_marks(allowed)})")
        params += list(allowed)
    return clauses, params


@_one_snapshot
def metrics(
    conn: sqlite3.Connection, *, names: Sequence[str] | None = None,
    suites: Sequence[str] | None = None, like: str | None = None,
    filters: Mapping[str, Sequence[Any]] | None = None, latest_only: bool = True,
    run_ids: Sequence[int] | None = None, swept: bool | None = None,
) -> pd.DataFrame:
    """Metric rows joined with their runs' identity, one row per (run, suite, name).

    ``filters`` maps run columns (task, model, seed, budget, approach) to allowed values;
    ``latest_only`` keeps the newest run of each approach/task/model/seed/budget/config (a
    re-run replaces the old one); ``like`` is a SQL ``LIKE`` pattern on the name; ``swept``
    keeps only sweep points (``True``) or only runs that are none (``False``).
    """
    run_clauses, run_params = _run_filters(filters)
    if run_ids is not None:
        run_clauses.append(f"r.id IN ({_marks(run_ids)})")
        run_params += list(run_ids)
    if latest_only:
        run_clauses.append(f"r.id IN ({_LATEST})")
    if swept is not None:
        run_clauses.append(_swept(conn) if swept else f"NOT ({_swept(conn)})")
    selected = " AND ".join(run_clauses)
    clauses, params = [f"m.run_id IN (SELECT r.id FROM runs r WHERE {selected})"], run_params
    for column, values in (("m.name", names), ("m.suite", suites)):
        if values is not None:
            clauses.append(f"{column} IN ({_marks(values)})")
            params = [*params, *values]
    if like:
        clauses.append("m.name LIKE ?")
        params = [*params, like]
    # Run columns come once per run and are joined here, not repeated per metric row by SQL.
    rows = _frame(conn, (
        "SELECT m.run_id, m.suite, m.name, m.value, m.ci_low, m.ci_high, m.n, "
        f"m.higher_is_better, m.extra_json FROM metrics m WHERE {' AND '.join(clauses)} "
        "ORDER BY m.run_id, m.id"), params)
    runs = _point_labels(_frame(
        conn, f"SELECT r.id AS run_id, {_RUN_COLUMNS}, {_newer_columns(conn)} "
        f"FROM runs r WHERE {selected}", run_params))
    frame = runs.merge(rows, on="run_id", how="inner")
    # A metric recorded twice for one run (a suite re-run in the same session): keep the last.
    return frame.drop_duplicates(["run_id", "suite", "name"], keep="last").reset_index(drop=True)


def curves(conn: sqlite3.Connection, run_ids: Sequence[int]) -> pd.DataFrame:
    """Training curves (step, split, name, value) of the given runs."""
    if not run_ids:
        return pd.DataFrame(columns=["run_id", "step", "split", "name", "value"])
    return _frame(conn, (
        f"SELECT run_id, step, split, name, value FROM curves WHERE run_id IN "
        f"({_marks(run_ids)}) ORDER BY run_id, name, split, step"), run_ids)


def curve_run_ids(conn: sqlite3.Connection) -> list[int]:
    """Runs that recorded a training curve."""
    return [row[0] for row in conn.execute("SELECT DISTINCT run_id FROM curves")]


def flipped_items(
    conn: sqlite3.Connection, run_id: int, flip: str | None = None, limit: int = 200,
) -> pd.DataFrame:
    """Forgetting-probe items whose correctness changed from the base model (``flip`` is
    ``fixed`` or ``broken``; ``None`` for both)."""
    flips = [flip] if flip else ["fixed", "broken"]
    return _frame(conn, (
        "SELECT item_id, json_extract(extra_json, '$.flip') AS flip, prompt, reference, "
        "json_extract(extra_json, '$.base_prediction') AS base_prediction, prediction "
        "FROM examples WHERE run_id = ? AND suite = 'forgetting.general' "
        f"AND json_valid(extra_json) AND json_extract(extra_json, '$.flip') IN ({_marks(flips)})"
        " ORDER BY id LIMIT ?"), [run_id, *flips, limit])


def latency_samples(
    conn: sqlite3.Connection, run_ids: Sequence[int], limit_per_run: int = 2000,
) -> pd.DataFrame:
    """Per-request latencies (examples suite ``latency``), at most ``limit_per_run`` each."""
    parts = [_frame(conn, (
        "SELECT run_id, item_id, latency_ms FROM examples WHERE run_id = ? "
        "AND suite = 'latency' AND latency_ms IS NOT NULL ORDER BY id LIMIT ?"),
        [run_id, limit_per_run]) for run_id in run_ids]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=["run_id", "item_id", "latency_ms"])
    return pd.concat(parts, ignore_index=True)


def main_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``frame`` (runs or metric rows) that are not side runs: no training
    examples count (``--data-sizes``) and no label-noise share (``--label-noise``) in their
    config (:data:`harness.runner.summary.SIDE_RUN_FIELDS`)."""
    keep = pd.Series(True, index=frame.index)
    for column in SIDE_RUN_FIELDS:
        if column in frame:
            keep &= frame[column].isna()
    return frame[keep]


def finished_candidates(conn: sqlite3.Connection) -> pd.DataFrame:
    """The latest finished run of every candidate (approach/task/model/seed/budget/config, as
    the leaderboard tells them apart), without side runs (:func:`main_runs`); ``runs``
    columns, oldest first. Used by the exports (``reports.lmeval_json``,
    ``reports.model_card``)."""
    every = main_runs(runs(conn))
    finished = every[every["status"] == "finished"]
    keys = ["approach", "task", "model", "seed", "budget", "config_hash"]
    latest = finished.sort_values("run_id").drop_duplicates(keys, keep="last")  # MAX(id)
    return latest.sort_values(["started_at", "run_id"]).reset_index(drop=True)


_RUN_JSON_FIELDS = {"info": "info_json", "packages": "packages_json", "config": "config_json"}


def run_json_field(conn: sqlite3.Connection, run_ids: Sequence[int],
                   field: str) -> dict[int, dict[str, Any]]:
    """``run_id -> parsed JSON`` of one run column (``info``: what preparing the candidate
    reported, e.g. ``artifact_dir``; ``packages``: installed versions; ``config``); ``{}``
    where the stored text is not a JSON object."""
    column = _RUN_JSON_FIELDS[field]
    out: dict[int, dict[str, Any]] = {}
    for run_id, text in conn.execute(
            f"SELECT id, {column} FROM runs WHERE id IN ({_marks(run_ids)})",
            [*map(int, run_ids)]):
        try:
            parsed = json.loads(text or "{}")
        except ValueError:
            parsed = {}
        out[int(run_id)] = parsed if isinstance(parsed, dict) else {}
    return out


class NoTrainedCandidates(LookupError):
    """The results database has runs, but none trained a candidate folder (the model-card
    export's error; here so the command line need not import the trainer's code to catch it)."""


DATA_FINDING_COLUMNS = ["task", "data_hash", "session", "split", "name", "count", "value",
                        "summary", "rows_json", "recorded_at"]


def data_findings(conn: sqlite3.Connection) -> pd.DataFrame:
    """The data check's findings (``data_findings``, ``harness.data.quality``) of the latest
    session that checked each task's data (task and data hash), newest data first, in the
    order recorded. Empty for a results file older than the table (schema 4 and before); a
    file of no tunebench schema lacking it is an error, like any missing table."""
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                          "name = 'data_findings'").fetchone()
    if not exists:
        if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
            raise sqlite3.DatabaseError("no such table: data_findings")
        return pd.DataFrame(columns=DATA_FINDING_COLUMNS)
    return _frame(conn, (
        f"SELECT {', '.join(DATA_FINDING_COLUMNS)} FROM data_findings f WHERE session = ("
        "SELECT g.session FROM data_findings g WHERE g.task = f.task AND g.data_hash = "
        "f.data_hash ORDER BY g.recorded_at DESC, g.id DESC LIMIT 1) "
        "ORDER BY (SELECT MAX(h.recorded_at) FROM data_findings h WHERE h.task = f.task AND "
        "h.data_hash = f.data_hash) DESC, id"))


def run_headlines(conn: sqlite3.Connection,
                  filters: Mapping[str, Sequence[Any]] | None = None) -> list[str]:
    """The headline metrics the runs in ``filters`` recorded (``Task.headline_metric``), most
    runs first; empty for databases older than recorded headlines."""
    clauses, params = _run_filters(filters)
    rows = conn.execute(f"SELECT {_HEADLINE} AS h, COUNT(*) AS n FROM runs r WHERE "
                        f"{' AND '.join(clauses)} GROUP BY h HAVING h IS NOT NULL "
                        "ORDER BY n DESC, h", params).fetchall()
    return [str(row[0]) for row in rows]
