"""The results store: one SQLite file (stdlib ``sqlite3``, WAL), one transaction per write.

Tables: ``runs`` (one candidate measured in one session, with its provenance and status),
``metrics`` (value, CI, n), ``examples`` (per-item predictions), ``curves`` (training loss)
and ``data_findings`` (what the data check, ``harness.data.quality``, found in a task's data:
one row per session, data hash and finding; it belongs to no run).
Every write commits on its own, so a crash or Ctrl-C loses at most the write in flight; a run
whose process died is found on the next open (its pid is gone) and marked ``interrupted``.
The dashboard only reads; it opens the file with ``mode=ro``.

Faults are measured by ``tests/test_faults.py``: a file that is no results database (or one of a
newer schema) is refused before anything is written to it (:func:`check_results_file`); several
processes may write one file at once (a writer waits for the others' short transactions, and
retries when SQLite gives up early); a write that fails for lack of space raises
:class:`ResultsWriteError` and leaves every committed row readable.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

SCHEMA_VERSION = 5
DATA_FINDINGS = """
CREATE TABLE IF NOT EXISTS data_findings (
    id INTEGER PRIMARY KEY,
    session TEXT NOT NULL,
    task TEXT NOT NULL,
    data_hash TEXT NOT NULL,
    split TEXT NOT NULL,
    name TEXT NOT NULL,
    count INTEGER NOT NULL,
    value REAL,
    summary TEXT NOT NULL,
    rows_json TEXT NOT NULL DEFAULT '[]',
    recorded_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS data_findings_task ON data_findings(task, data_hash);
"""
MIGRATIONS = {
    2: "ALTER TABLE runs ADD COLUMN precision TEXT NOT NULL DEFAULT 'fp32';",
    3: "ALTER TABLE runs ADD COLUMN kind TEXT;",
    4: "ALTER TABLE runs ADD COLUMN sweep_json TEXT NOT NULL DEFAULT '{}'; "
       "ALTER TABLE runs ADD COLUMN cell_hash TEXT;",
    5: DATA_FINDINGS,
}
"""Statements that bring a database of version ``n - 1`` to version ``n``."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    session TEXT NOT NULL,
    approach TEXT NOT NULL,
    task TEXT NOT NULL,
    model TEXT NOT NULL,
    seed INTEGER NOT NULL,
    budget TEXT NOT NULL,
    config_json TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    data_hash TEXT NOT NULL,
    model_version TEXT NOT NULL,
    code_version TEXT NOT NULL,
    packages_json TEXT NOT NULL,
    device TEXT NOT NULL,
    precision TEXT NOT NULL DEFAULT 'fp32',
    kind TEXT,
    sweep_json TEXT NOT NULL DEFAULT '{}',
    cell_hash TEXT,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'interrupted')),
    error TEXT,
    info_json TEXT NOT NULL DEFAULT '{}',
    started_at REAL NOT NULL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS metrics (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    suite TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    ci_low REAL,
    ci_high REAL,
    n INTEGER,
    higher_is_better INTEGER,
    extra_json TEXT NOT NULL DEFAULT '{}',
    recorded_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS examples (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    suite TEXT NOT NULL,
    item_id TEXT NOT NULL,
    prompt TEXT NOT NULL,
    prediction TEXT,
    reference TEXT,
    correct INTEGER,
    score REAL,
    latency_ms REAL,
    extra_json TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS curves (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    step INTEGER NOT NULL,
    split TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT 'loss',
    value REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics(run_id);
CREATE INDEX IF NOT EXISTS examples_run ON examples(run_id, suite);
CREATE INDEX IF NOT EXISTS curves_run ON curves(run_id);
""" + DATA_FINDINGS


@dataclass(frozen=True)
class RunRecord:
    """What identifies and describes a run when it starts."""

    session: str
    approach: str
    task: str
    model: str
    seed: int
    budget: str
    config: Mapping[str, Any]
    config_hash: str
    data_hash: str
    model_version: str
    code_version: str
    packages: Mapping[str, str]
    device: str
    precision: str = "fp32"
    """The dtype matmuls ran in (``fp32``, ``bf16``, ``fp16``)."""
    kind: str | None = None
    """The approach's kind of adaptation (``harness.core.kinds.KINDS``); ``None`` in runs
    recorded before kinds were."""
    sweep: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """The swept options of this cell of an experiment matrix (``--sweep``), by
    ``approach.field`` (``{"dpo.beta": 0.3}``); empty for a run that is no sweep point."""
    cell_hash: str | None = None
    """Hash of everything that determines the cell's results (config, data, model, code,
    seed, precision, what is measured): ``--resume`` reuses a finished run with the same."""


LOCK_WAIT = 30.0
"""Seconds SQLite's busy handler waits for another process's write to end, per attempt."""
LOCK_ATTEMPTS = 4
"""Attempts to start a write before giving up (SQLite can report a lock before ``LOCK_WAIT``
when its busy handler does not apply, e.g. while another process recovers the WAL)."""
SQLITE_HEADER = b"SQLite format 3\x00"


class ResultsFileError(RuntimeError):
    """The results file cannot be used (not SQLite, not ours, a newer schema); nothing was
    written to it."""


class ResultsWriteError(RuntimeError):
    """A write to the results file failed (disk full, file too large, I/O error, locked too
    long); it was rolled back and every earlier write is intact."""


def open_read_only(path: Path, *, timeout: float = LOCK_WAIT) -> sqlite3.Connection:
    """A connection that cannot write to the results file ``path`` (SQLite's ``mode=ro`` URI
    and ``PRAGMA query_only``): for readers while a runner may be writing (the dashboard, the
    exports, the time estimate, the MLflow mirror). ``timeout`` is how long a query waits for
    a writer's lock."""
    connection = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True,
                                 check_same_thread=False, timeout=timeout)
    connection.execute("PRAGMA query_only=ON")
    return connection


def check_results_file(path: Path) -> None:
    """Raise :class:`ResultsFileError` unless ``path`` is missing, empty or a tunebench results
    database of this or an older schema. Only reads: the file is left byte-for-byte as it is."""
    if not path.exists() or (path.is_file() and path.stat().st_size == 0):
        return
    what_to_do = ("nothing was written to it; give --results another file name (or move "
                  "the file away) and rerun")
    if not path.is_file():
        raise ResultsFileError(f"{path} is not a file; {what_to_do}")
    with path.open("rb") as file:
        header = file.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise ResultsFileError(f"{path} is not a tunebench results database (not an SQLite "
                               f"file); {what_to_do}")
    try:
        reader = open_read_only(path)
        try:
            version = reader.execute("PRAGMA user_version").fetchone()[0]
            tables = {row[0] for row in reader.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            reader.close()
    except sqlite3.DatabaseError as error:
        raise ResultsFileError(f"{path} cannot be read as an SQLite database ({error}); "
                               f"{what_to_do}") from error
    if version > SCHEMA_VERSION:
        raise ResultsFileError(
            f"{path} was written by a newer tunebench (schema {version}, this one writes "
            f"{SCHEMA_VERSION}); upgrade tunebench or use another --results file; nothing was "
            "written to it")
    if tables and "runs" not in tables:
        raise ResultsFileError(
            f"{path} is an SQLite database of something else (tables: "
            f"{', '.join(sorted(tables)[:5])}), not tunebench results; {what_to_do}")


def _locked(error: sqlite3.Error) -> bool:
    name = getattr(error, "sqlite_errorname", "")  # Python 3.11+; the message before
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "is locked" in str(error)


def _out_of_space(error: sqlite3.Error) -> bool:
    name = getattr(error, "sqlite_errorname", "")
    return name.startswith(("SQLITE_FULL", "SQLITE_IOERR")) or str(error) in {
        "database or disk is full", "disk I/O error"}


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """Read/write access to a results database file (created on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.retries = 0
        """Writes that found the file locked after SQLite's busy wait and were tried again."""
        check_results_file(self.path)  # before anything can write to it
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=LOCK_WAIT, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self._retry_locked(lambda: self.db.execute("PRAGMA journal_mode=WAL"))
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self._create_schema()
        self.mark_orphaned_runs()

    def _create_schema(self) -> None:
        if self.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return  # nothing to write (opening never competes with other writers for a lock)
        with self.transaction() as db:  # read again inside: another process may have done it
            version = db.execute("PRAGMA user_version").fetchone()[0]
            existing = db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'runs'")
            old = version > 0 and existing.fetchone()[0] > 0  # older tables to bring up to date
            for statement in [*(MIGRATIONS[v] for v in range(version + 1, SCHEMA_VERSION + 1)
                                if old), SCHEMA]:
                for part in statement.split(";"):
                    if part.strip():
                        db.execute(part)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _retry_locked(self, operation: Callable[[], Any]) -> Any:
        """``operation()``, tried again (after a short random pause) while another process
        holds the write lock past SQLite's own busy wait."""
        for attempt in range(1, LOCK_ATTEMPTS + 1):
            try:
                return operation()
            except sqlite3.OperationalError as error:
                if not _locked(error):
                    raise
                if attempt == LOCK_ATTEMPTS:
                    raise ResultsWriteError(
                        f"{self.path} stayed locked by another writer through {attempt} waits "
                        f"of up to {LOCK_WAIT:.0f} s ({error}); nothing recorded so far is "
                        "lost: find the process holding it (fuser) and rerun") from error
                self.retries += 1
                time.sleep(random.uniform(0.01, 0.1) * attempt)
        raise AssertionError("unreachable")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: all of it lands, or (on any error, Ctrl-C included) none of it.

        A write that fails for lack of space (or any I/O error) raises
        :class:`ResultsWriteError`; SQLite rolls it back and the file stays intact."""
        try:
            self._retry_locked(lambda: self.db.execute("BEGIN IMMEDIATE"))
            yield self.db
            self.db.execute("COMMIT")
        except BaseException as error:
            if self.db.in_transaction:  # not when COMMIT itself succeeded before a Ctrl-C
                with suppress(sqlite3.Error):  # SQLite rolls back itself after some I/O errors
                    self.db.execute("ROLLBACK")
            if isinstance(error, sqlite3.Error) and _out_of_space(error):
                raise ResultsWriteError(
                    f"no space left / file too large writing {self.path} ({error}): free space "
                    "and rerun; nothing recorded so far is lost (this write was rolled back)"
                ) from error
            raise

    def mark_orphaned_runs(self) -> int:
        """Mark ``running`` runs of this host whose process is gone as ``interrupted``."""
        rows = self.db.execute(
            "SELECT id, pid FROM runs WHERE status = 'running' AND host = ?",
            (socket.gethostname(),),
        ).fetchall()
        dead = [row["id"] for row in rows if not pid_alive(row["pid"])]
        for run_id in dead:
            self.finish_run(run_id, "interrupted", "the process ended without closing the run")
        return len(dead)

    def start_run(self, record: RunRecord) -> int:
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO runs (session, approach, task, model, seed, budget, config_json, "
                "config_hash, data_hash, model_version, code_version, packages_json, device, "
                "precision, kind, sweep_json, cell_hash, host, pid, status, started_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    record.session, record.approach, record.task, record.model, record.seed,
                    record.budget, json.dumps(record.config, sort_keys=True), record.config_hash,
                    record.data_hash, record.model_version, record.code_version,
                    json.dumps(record.packages, sort_keys=True), record.device,
                    record.precision, record.kind, json.dumps(record.sweep, sort_keys=True),
                    record.cell_hash, socket.gethostname(), os.getpid(), "running",
                    time.time(),
                ),
            )
            return int(cursor.lastrowid)

    def update_info(self, run_id: int, info: Mapping[str, Any]) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET info_json = ? WHERE id = ?",
                (json.dumps(info, sort_keys=True, default=str), run_id),
            )

    def finish_run(self, run_id: int, status: str, error: str | None = None,
                   cell_hash: str | None = None) -> None:
        """Close a run; ``cell_hash`` marks it reusable by ``--resume`` (a finished run
        whose tests all passed)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status = ?, error = ?, finished_at = ?, cell_hash = ? "
                "WHERE id = ?",
                (status, error, time.time(), cell_hash, run_id),
            )

    def add_metric(
        self, run_id: int, suite: str, name: str, value: float, *, low: float | None = None,
        high: float | None = None, n: int | None = None, higher_is_better: bool | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO metrics (run_id, suite, name, value, ci_low, ci_high, n, "
                "higher_is_better, extra_json, recorded_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id, suite, name, float(value), low, high, n,
                    None if higher_is_better is None else int(higher_is_better),
                    json.dumps(extra or {}, sort_keys=True), time.time(),
                ),
            )

    def add_examples(self, run_id: int, suite: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Per-item results; each row has ``item_id`` and ``prompt`` and optionally
        ``prediction``, ``reference``, ``correct``, ``score``, ``latency_ms``, ``extra``."""
        values = [
            (
                run_id, suite, row["item_id"], row["prompt"], row.get("prediction"),
                row.get("reference"),
                None if row.get("correct") is None else int(bool(row["correct"])),
                row.get("score"), row.get("latency_ms"),
                json.dumps(row.get("extra") or {}, sort_keys=True),
            )
            for row in rows
        ]
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO examples (run_id, suite, item_id, prompt, prediction, reference, "
                "correct, score, latency_ms, extra_json) VALUES (?,?,?,?,?,?,?,?,?,?)",
                values,
            )

    def add_curve_points(
        self, run_id: int, points: Iterable[tuple[int, str, str, float]]
    ) -> None:
        """``(step, split, name, value)`` points of a training curve."""
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO curves (run_id, step, split, name, value) VALUES (?,?,?,?,?)",
                [(run_id, *point) for point in points],
            )

    def add_data_finding(
        self, *, session: str, task: str, data_hash: str, split: str, name: str, count: int,
        summary: str, rows: Iterable[Mapping[str, Any]] = (), value: float | None = None,
    ) -> None:
        """One finding of the data check (``harness.data.quality.Finding``) on the data with
        ``data_hash``; replaces the session's earlier row of the same data and name (the
        start-of-session check's, when the suite runs the check again)."""
        with self.transaction() as db:
            db.execute("DELETE FROM data_findings WHERE session = ? AND data_hash = ? AND "
                       "name = ?", (session, data_hash, name))
            db.execute(
                "INSERT INTO data_findings (session, task, data_hash, split, name, count, value, "
                "summary, rows_json, recorded_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (session, task, data_hash, split, name, int(count),
                 None if value is None else float(value), summary,
                 json.dumps([dict(r) for r in rows], sort_keys=True, default=str), time.time()),
            )

    def export_runs(self) -> list[dict[str, Any]]:
        """Every run with its metrics, examples and curves as plain values (what a worker
        of a distributed executor sends back; :meth:`import_run` writes it)."""
        runs = []
        for run in self.query("SELECT * FROM runs ORDER BY id"):
            rows = {table: [dict(row) for row in self.query(
                        f"SELECT * FROM {table} WHERE run_id = ? ORDER BY id", (run["id"],))]
                    for table in ("metrics", "examples", "curves")}
            runs.append({"run": dict(run), **rows})
        return runs

    def import_runs(self, exported: Iterable[Mapping[str, Any]], *, session: str,
                    info: Mapping[str, Any] | None = None) -> list[int]:
        """Write runs of :meth:`export_runs` (from another database) as new runs of
        ``session``, in one transaction: all of them land or none. ``info`` is merged into
        each run's info; metrics' ``extra.run_id`` references to the other database's runs
        are rewritten to the new ids. Returns the new run ids, in order."""
        exported = list(exported)
        mapping: dict[int, int] = {}
        with self.transaction() as db:
            for item in exported:
                run = dict(item["run"])
                old_id = run.pop("id")
                run["session"] = session
                if info:
                    run["info_json"] = json.dumps({**json.loads(run["info_json"]), **info},
                                                  sort_keys=True, default=str)
                mapping[old_id] = self._insert(db, "runs", run)
            for item in exported:
                new_id = mapping[item["run"]["id"]]
                for table in ("metrics", "examples", "curves"):
                    for row in item[table]:
                        row = {k: v for k, v in row.items() if k != "id"}
                        row["run_id"] = new_id
                        extra = json.loads(row.get("extra_json") or "{}")
                        if table == "metrics" and extra.get("run_id") in mapping:
                            extra["run_id"] = mapping[extra["run_id"]]
                            row["extra_json"] = json.dumps(extra, sort_keys=True)
                        self._insert(db, table, row)
        return [mapping[item["run"]["id"]] for item in exported]

    @staticmethod
    def _insert(db: sqlite3.Connection, table: str, row: Mapping[str, Any]) -> int:
        columns = ", ".join(row)
        cursor = db.execute(f"INSERT INTO {table} ({columns}) VALUES "
                            f"({', '.join('?' * len(row))})", list(row.values()))
        return int(cursor.lastrowid)

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return self.db.execute(sql, tuple(params)).fetchall()

    def close(self) -> None:
        self.db.close()
