"""Streamlit glue shared by the pages: which database, cached read-only loading, empty states.

Follows Streamlit's caching docs: the SQLite connection is a resource
(``st.cache_resource``, one per file), query results are data (``st.cache_data``) keyed on
the path and the file's version (inode, size and mtime of the database and its WAL file,
since a writer in WAL mode may leave the main file untouched), so a new run shows up on the
next rerun and an unchanged file is never read twice.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from reports import data, example_data, sweep_data
from reports.analysis import names_by_run as names_by_run  # the pages call ui.names_by_run

_LOCK = threading.Lock()  # one cached connection is shared by every session's thread
SCOPE = ("task", "model", "budget", "seed")
REMEMBER = "tunebench-scope-"


def db_path() -> Path:
    """``--db`` after ``--`` on the ``streamlit run`` line, else ``TUNEBENCH_RESULTS``, else
    ``results/tunebench.db``."""
    return data.resolve_path(sys.argv[1:], os.environ)


def file_version(path: Path) -> tuple[int, ...] | None:
    """What changes when the database does (``None`` if there is no file)."""
    try:
        main = path.stat()
    except OSError:
        return None
    wal = Path(f"{path}-wal")
    extra = (wal.stat().st_size, wal.stat().st_mtime_ns) if wal.exists() else (0, 0)
    return (main.st_ino, main.st_size, main.st_mtime_ns, *extra)


@st.cache_resource(show_spinner=False)
def _connection(path: str, inode: int) -> sqlite3.Connection:
    return data.connect(path)


@st.cache_data(show_spinner=False, max_entries=256)
def _load(name: str, path: str, version: tuple[int, ...], args: tuple[Any, ...],
          kwargs: tuple[tuple[str, Any], ...]) -> Any:
    function = (getattr(data, name, None) or getattr(example_data, name, None)
                or getattr(sweep_data, name))
    with _LOCK:
        return function(_connection(path, version[0]), *args, **dict(kwargs))


@dataclass(frozen=True)
class Results:
    """The open database of this rerun; ``load("metrics", names=[...])`` calls
    ``reports.data.metrics`` through the cache."""

    path: Path
    version: tuple[int, ...]

    def load(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return _load(name, str(self.path), self.version, args, tuple(sorted(kwargs.items())))


def empty_state(path: Path, why: str) -> None:
    make, pytest_line = data.FILL_HINT
    st.info(
        f"**{why}** (`{path}`).\n\n"
        f"Fill it by running the benchmark: `{make}`, or measure a few approaches yourself: "
        f"`{pytest_line}` (`pytest suites/ --approach=...`; add `--results PATH` for another "
        "file), then reload this page.\n\n"
        "Open another database with `streamlit run reports/app.py -- --db PATH` or the "
        "`TUNEBENCH_RESULTS` environment variable; try the dashboard on made-up data with "
        "`python -m reports.sample demo.db`."
    )


def results_or_stop() -> Results:
    """The database, or an empty state (with the command that fills it) and ``st.stop()``."""
    path = db_path()
    version = file_version(path)
    if version is None:
        empty_state(path, "No results database yet")
        st.stop()
    results = Results(path, version)
    try:
        count = results.load("run_count")
    except sqlite3.DatabaseError as error:
        st.error(f"`{path}` is not a readable tunebench results database: {error}")
        st.stop()
    if count == 0:
        empty_state(path, "The results database has no runs yet")
        st.stop()
    return results


def nothing_recorded(what: str, hint: str) -> None:
    """The message a page shows when the database lacks the metrics it needs."""
    st.info(f"No {what} recorded for this selection. {hint}")


def _remembered(name: str, values: list[Any], fallback: Any) -> int:
    current = st.session_state.get(f"{REMEMBER}{name}", fallback)
    return values.index(current) if current in values else 0


def scope(results: Results, key: str, *, all_tasks: bool = False) -> dict[str, list[Any]]:
    """Filter widgets (task, model, budget, seed) in one row; returns ``metrics`` filters.

    With ``all_tasks`` (the leaderboard) each is a multiselect, everything selected. Else one
    task and, within it, one model, budget and seed, opening on the task with most runs and
    its latest run's model/budget/seed; the choice carries over to the next page."""
    columns = st.columns(len(SCOPE))
    chosen: dict[str, list[Any]] = {}
    if all_tasks:
        options = results.load("filter_options")
        for column, name in zip(columns, SCOPE, strict=True):
            chosen[name] = column.multiselect(name, options[name], default=options[name],
                                              key=f"{key}-{name}") or options[name]
        return chosen
    tasks = results.load("filter_options")["task"]
    with columns[0]:
        task = st.selectbox("task", tasks, key=f"{key}-task",
                            index=_remembered("task", tasks, results.load("busiest_task")))
    within = results.load("scope_options", task)
    for column, name in zip(columns, SCOPE, strict=True):
        values = within[name]
        with column:
            if name != "task":
                picked = st.selectbox(name, values, key=f"{key}-{name}-{task}",
                                      index=_remembered(name, values, within["latest"][name]))
            else:
                picked = task
        st.session_state[f"{REMEMBER}{name}"] = picked  # the next page opens on the same
        chosen[name] = [picked]
    return chosen


def scoped_runs(results: Results, filters: dict[str, list[Any]], ids: str) -> pd.DataFrame:
    """The runs inside ``filters`` (from :func:`scope`) that have data of kind ``ids``
    (a loader returning run ids, e.g. ``"curve_run_ids"``)."""
    runs = results.load("runs")
    for column, allowed in filters.items():
        runs = runs[runs[column].isin(allowed)]
    return runs[runs["run_id"].isin(set(results.load(ids)))]


def pick_candidates(names: dict[int, str], key: str, label: str = "candidates",
                    default: Sequence[int] | None = None) -> list[int]:
    """A multiselect of candidates by name; returns their run ids."""
    chosen = st.multiselect(label, list(names), default=list(default or names),
                            format_func=names.get, key=key)
    return list(chosen)
