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
from reports.analysis import catalogue

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


def example_run_ids(conn: sqlite3.Connection) -> list[int]:
    """Runs that stored per-item examples (an index-only scan)."""
    return [row[0] for row in conn.execute("SELECT DISTINCT run_id FROM examples")]


def example_suites(conn: sqlite3.Connection, run_id: int) -> list[str]:
    """The example tables (suite names) one run recorded."""
    return [row[0] for row in conn.execute(
        "SELECT DISTINCT suite FROM examples WHERE run_id = ? ORDER BY suite", (run_id,))]


def _example_filters(prefix: str, correct: bool | None, search: str) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if correct is not None:
        clauses.append(f"{prefix}.correct = ?")
        params.append(int(correct))
    if search:
        clauses.append(f"({prefix}.prompt LIKE ? OR {prefix}.prediction LIKE ? "
                       f"OR {prefix}.reference LIKE ?)")
        params += [f"%{search}%"] * 3
    return "".join(f" AND {c}" for c in clauses), params


def _json_path(name: str) -> str:
    """SQLite JSON path of the top-level key ``name``, quoted (``$."f1[x]"``)."""
    if '"' in name:
        raise ValueError(f"per-item metric {name!r}: a name with a double quote cannot be read "
                         "from extra_json; rename the metric")
    return f'$."{name}"'


def _extra_number(prefix: str, name: str) -> tuple[str, list[str]]:
    """SQL of the number stored under ``name`` in ``{prefix}.extra_json`` (NULL where the key
    is absent, not a number, or the text is no JSON) and its parameters."""
    path = _json_path(name)
    return (f"CASE WHEN json_valid({prefix}.extra_json) THEN CASE WHEN json_type("
            f"{prefix}.extra_json, ?) IN ('integer', 'real') THEN json_extract("
            f"{prefix}.extra_json, ?) END END", [path, path])


def _reply(prefix: str) -> str:
    """SQL of a generation row's reply (extra ``generated``), NULL elsewhere."""
    return (f"CASE WHEN json_valid({prefix}.extra_json) "
            f"THEN json_extract({prefix}.extra_json, '$.generated') END")


def item_metrics(conn: sqlite3.Connection, run_id: int, suite: str) -> list[str]:
    """``correct`` and the per-item metrics one run's rows of ``suite`` carry: numbers in
    their ``extra_json`` that the metric catalogue describes (``f1``, ``chrf``...), by the
    catalogue's headline rank, then name."""
    known = catalogue()
    found = [row[0] for row in conn.execute(
        "SELECT DISTINCT j.key FROM examples e, json_each(CASE WHEN json_valid(e.extra_json) "
        "THEN e.extra_json ELSE '{}' END) j WHERE e.run_id = ? AND e.suite = ? "
        "AND j.type IN ('integer', 'real')", (run_id, suite))]
    named = [n for n in found if n in known and n != "correct" and '"' not in n]
    return ["correct", *sorted(named, key=lambda n: (known.rank(n), n))]


def _generation_layout(conn: sqlite3.Connection, run_id: int, suite: str) -> tuple[bool, bool]:
    """Whether the rows carry a free reply (extra ``generated``), and whether the task maps
    replies to another prediction (a label), so both are worth a column."""
    row = conn.execute(
        f"SELECT MAX(reply IS NOT NULL), MAX(reply IS NOT NULL AND prediction IS NOT reply) "
        f"FROM (SELECT {_reply('e')} AS reply, e.prediction FROM examples e "
        "WHERE e.run_id = ? AND e.suite = ?)", (run_id, suite)).fetchone()
    return bool(row[0]), bool(row[1])


@_one_snapshot
def examples_page(
    conn: sqlite3.Connection, run_id: int, suite: str, *, correct: bool | None = None,
    search: str = "", limit: int = 50, offset: int = 0,
) -> tuple[pd.DataFrame, int]:
    """One page of a run's per-item rows (filtered) and the number of matching rows.

    Rows of free replies (generation suites) show item_id, prompt, reply, the mapped
    prediction where the task maps replies to labels, reference, correct and one column per
    per-item metric (:func:`item_metrics`, rounded to 3 decimals); other rows all stored
    columns."""
    extra, params = _example_filters("e", correct, search)
    base = f"FROM examples e WHERE e.run_id = ? AND e.suite = ?{extra}"
    args = [run_id, suite, *params]
    total = conn.execute(f"SELECT COUNT(*) {base}", args).fetchone()[0]
    replies, labels = _generation_layout(conn, run_id, suite)
    if not replies:
        page = _frame(conn, (
            "SELECT e.item_id, e.prompt, e.prediction, e.reference, e.correct, e.score, "
            f"e.latency_ms, e.extra_json {base} ORDER BY e.id LIMIT ? OFFSET ?"),
            [*args, limit, offset])
        return page, total
    names = item_metrics(conn, run_id, suite)[1:]
    columns, values = [], []
    for k, name in enumerate(names):
        sql, path = _extra_number("e", name)
        columns.append(f", ROUND({sql}, 3) AS m{k}")
        values += path
    page = _frame(conn, (
        f"SELECT e.item_id, e.prompt, {_reply('e')} AS reply"
        f"{', e.prediction' if labels else ''}, e.reference, e.correct{''.join(columns)} "
        f"{base} ORDER BY e.id LIMIT ? OFFSET ?"), [*values, *args, limit, offset])
    return page.rename(columns={f"m{k}": name for k, name in enumerate(names)}), total


_PAIR_FILTERS = {
    "all": "", "disagree": " AND value_a IS NOT value_b",
    "fixed": " AND value_b > value_a", "broken": " AND value_b < value_a",
}
"""Filters on a side-by-side pair (on a metric where higher is better; ``fixed`` and
``broken`` swap for one where lower is)."""
SIDE_ORDERS = {"difference": "ROUND(ABS(value_b - value_a), 9) DESC, position",
               "item": "position"}
"""Orders of a side-by-side table: largest absolute difference B - A first (items without
both values last), or the items' order."""


@_one_snapshot
def side_by_side(
    conn: sqlite3.Connection, run_a: int, run_b: int, suite: str, *, only: str = "all",
    search: str = "", limit: int = 50, offset: int = 0, metric: str = "correct",
    order: str = "item",
) -> tuple[pd.DataFrame, int]:
    """The same items answered by two runs (joined on ``item_id``), one page of them, with
    each run's value of ``metric`` (``correct`` or one of :func:`item_metrics`).

    ``only``: ``all``, ``disagree`` (different values), ``fixed`` (B better: A wrong and B
    right for ``correct``) or ``broken`` (B worse), better read in the metric catalogue's
    direction; ``order``: a key of :data:`SIDE_ORDERS`. Rows of right/wrong answers compared
    on ``correct`` keep their columns (prediction_a, correct_a, ...); otherwise the columns
    are both replies (``reply_a`` for free replies, else ``prediction_a``), the reference,
    ``{metric}_a``, ``{metric}_b`` and ``difference`` (B - A), rounded to 3 decimals."""
    if only not in _PAIR_FILTERS or order not in SIDE_ORDERS:
        raise ValueError(f"side_by_side: only must be one of {sorted(_PAIR_FILTERS)} and order "
                         f"one of {sorted(SIDE_ORDERS)}, got {only!r} and {order!r}")
    replies, _ = _generation_layout(conn, run_a, suite)
    if metric == "correct":
        value_a, value_b, value_params = "a.correct", "b.correct", []
    else:
        value_a, params_a = _extra_number("a", metric)
        value_b, params_b = _extra_number("b", metric)
        value_params = [*params_a, *params_b]
    reply_a, reply_b = (_reply("a"), _reply("b")) if replies else ("a.prediction", "b.prediction")
    extra, params = _example_filters("a", None, search)
    # Items paired by grouping both runs' rows on item_id (each run's last row of an item),
    # then read by primary key: joining the rows on item_id would scan all of B's rows for
    # each of A's (the examples index is on run and suite), quadratic in items.
    pairs = (
        "WITH ids AS MATERIALIZED (SELECT MAX(CASE WHEN run_id = ? THEN id END) AS a_id, "
        "MAX(CASE WHEN run_id = ? THEN id END) AS b_id FROM examples "
        "WHERE run_id IN (?, ?) AND suite = ? GROUP BY item_id), "
        "pairs AS (SELECT a.id AS position, a.item_id, a.prompt, a.reference, "
        f"{reply_a} AS reply_a, {reply_b} AS reply_b, {value_a} AS value_a, "
        f"{value_b} AS value_b FROM ids JOIN examples a ON a.id = ids.a_id "
        f"JOIN examples b ON b.id = ids.b_id WHERE 1{extra}) ")
    higher = metric == "correct" or catalogue().direction(metric) is not False
    flipped = {"fixed": "broken", "broken": "fixed"}
    where = f"FROM pairs WHERE 1{_PAIR_FILTERS[only if higher else flipped.get(only, only)]}"
    args = [run_a, run_b, run_a, run_b, suite, *value_params, *params]
    total = conn.execute(f"{pairs}SELECT COUNT(*) {where}", args).fetchone()[0]
    reply = "reply" if replies else "prediction"
    if metric == "correct" and not replies:
        columns = ("item_id, prompt, reference, reply_a AS prediction_a, value_a AS correct_a, "
                   "reply_b AS prediction_b, value_b AS correct_b")
    else:
        rounded = "{}" if metric == "correct" else "ROUND({}, 3)"
        columns = (f"item_id, prompt, reply_a AS {reply}_a, reply_b AS {reply}_b, reference, "
                   f"{rounded.format('value_a')} AS value_a, {rounded.format('value_b')} AS "
                   f"value_b, {rounded.format('value_b - value_a')} AS difference")
    page = _frame(conn, f"{pairs}SELECT {columns} {where} ORDER BY {SIDE_ORDERS[order]} "
                  "LIMIT ? OFFSET ?", [*args, limit, offset])
    return page.rename(columns={"value_a": f"{metric}_a", "value_b": f"{metric}_b"}), total


def item_scores(conn: sqlite3.Connection, run_id: int, suite: str,
                metric: str) -> dict[str, float | bool]:
    """``item_id -> value`` of one per-item metric (:func:`item_metrics`) for one run's rows
    of ``suite``: bools for ``correct``, floats for the others; items without the value are
    absent (input of ``harness.measure.compare.pair_by_id``)."""
    return item_scores_by_run(conn, [run_id], suite, metric).get(int(run_id), {})


def item_scores_by_run(conn: sqlite3.Connection, run_ids: Sequence[int], suite: str,
                       metric: str) -> dict[int, dict[str, float | bool]]:
    """``run_id -> {item_id -> value}`` of one per-item metric for several runs in one query
    (:func:`item_scores`); runs without such values are absent. An item stored twice (a
    suite re-run in one session) keeps its last row, like metrics."""
    out: dict[int, dict[str, float | bool]] = {}
    if not run_ids:
        return out
    if metric == "correct":
        value, value_params, convert = "e.correct", [], bool
    else:
        value, value_params = _extra_number("e", metric)
        convert = float
    for run_id, item, score in conn.execute(
            f"SELECT run_id, item_id, score FROM (SELECT e.id, e.run_id, e.item_id, {value} "
            f"AS score FROM examples e WHERE e.run_id IN ({_marks(run_ids)}) AND e.suite = ?) "
            "WHERE score IS NOT NULL ORDER BY id", [*value_params, *map(int, run_ids), suite]):
        out.setdefault(int(run_id), {})[str(item)] = convert(score)
    return out


def correctness(conn: sqlite3.Connection, run_id: int, suite: str) -> dict[str, bool]:
    """``item_id -> correct`` for one run's scored items of one suite (input of
    ``harness.measure.compare.pair_by_id``)."""
    return item_scores(conn, run_id, suite, "correct")


def correctness_by_run(conn: sqlite3.Connection, run_ids: Sequence[int],
                       suite: str) -> dict[int, dict[str, bool]]:
    """``run_id -> {item_id -> correct}`` for the scored items of ``suite`` (e.g.
    ``accuracy.choice``) of several runs in one query; runs without such rows are absent.
    An item stored twice (a suite re-run in one session) keeps its last row, like metrics."""
    return item_scores_by_run(conn, run_ids, suite, "correct")


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
