"""Read-only queries of a results database's per-item rows (the ``examples`` table): a page
of one run's rows, two runs side by side on the same items, and one per-item metric by item.

Rows come a page at a time (``LIMIT``/``OFFSET``). Generation rows of free replies show the
reply (``extra.generated``) and every per-item metric the catalogue describes; two candidates
are paired on ``item_id`` (each run's last row of an item) and compared on any of them, the
input of ``harness.measure.compare``. The connection and helpers are :mod:`reports.data`'s.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import pandas as pd

from reports.analysis import catalogue
from reports.data import _frame, _marks, _one_snapshot


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
