"""Reliability under faults: each test injects one and checks nothing recorded is lost or
corrupted (README, "Reliability").

1. SIGKILL of a runner while it trains, while it saves the candidate and while it scores;
2. Ctrl-C (SIGINT) while it trains and while it scores, and the summary of what was kept;
3. two and four runners writing one results database at once (and simultaneous opens);
4. the dashboard's data layer reading while runners write;
5. a results file that is not ours (text, another SQLite file, a newer schema);
6. a write that finds no space (``RLIMIT_FSIZE``);
7. a cached candidate whose files were changed.

The runner tests share one cache and one database and run in order, each fixture the next step
of one story (kill, rerun, tamper, ...), so a lora candidate is trained three times in all; the
runners pause where the fault goes (``tests/helpers/fault_plugins.py``), so timing never
decides where a signal lands.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.runner.store import (
    SCHEMA_VERSION,
    ResultsFileError,
    RunRecord,
    Store,
    check_results_file,
)
from harness.train.trained import MANIFEST, cache_problem, file_checksums, remove_dead_staging
from reports import data
from reports.export import export
from tests.conftest import ROOT, run_suites, start_suites, wait_while_running
from tests.conftest import query_db as rows

slow = pytest.mark.slow
story = pytest.mark.xdist_group("fault-story")
"""The runner tests of one story need one worker (its module fixtures are built once, in
order); the module's other tests go to whichever worker is free."""

SUITES = ["test_accuracy.py"]
ORPHANED = "the process ended without closing the run"


def record(**changes) -> RunRecord:
    values = dict(session="s", approach="zero-shot", task="sentiment", model="m", seed=0,
                  budget="smoke", config={}, config_hash="c", data_hash="d", model_version="v",
                  code_version="x", packages={}, device="cpu")
    return RunRecord(**{**values, **changes})


def integrity(db: Path) -> str:
    return rows(db, "PRAGMA integrity_check")[0][0]


# --- the runner killed and interrupted: one story on one database and one cache --------------


@dataclass
class Stopped:
    """A runner stopped by a signal (or left to finish): what the test saw at that moment."""

    pid: int
    returncode: int
    output: str
    seen: list[sqlite3.Row]
    """The runs table read right after the signal, before any other process opened the file."""


def recorded(db: Path) -> set[str]:
    """Every stored row, as text (NaN equals itself there); a run by what identifies it, as
    its status may change later."""
    if not db.exists():
        return set()
    found = {repr(("runs", *r)) for r in rows(db, "SELECT id, session, approach, started_at "
                                                  "FROM runs")}
    for table in ("metrics", "examples", "curves"):
        found |= {repr((table, *r)) for r in rows(db, f"SELECT * FROM {table}")}
    return found


class Lab:
    """A folder with a results database and a candidate cache that runners share."""

    def __init__(self, folder: Path, model: Path) -> None:
        self.folder, self.model = folder, model
        self.db, self.cache = folder / "r.db", folder / "cache"
        self.steps = 0
        self.lost: list[int] = []
        """Per runner: rows stored before it started that were missing after it stopped."""

    def candidates(self) -> list[Path]:
        folder = self.cache / "candidates" / "lora"
        return sorted(folder.iterdir()) if folder.exists() else []

    def run(self, args: list[str], *, pause: str = "", stop: signal.Signals | None = None,
            env: dict[str, str] | None = None) -> Stopped:
        """Run ``pytest suites/test_accuracy.py ARGS``; with ``pause``, wait until the runner
        pauses there and send it ``stop``."""
        self.steps += 1
        before = recorded(self.db)
        marker, log = self.folder / f"paused-{self.steps}", self.folder / f"out-{self.steps}"
        # A process forked by the runner server (tests/helpers/runner_server.py): a real
        # process, killed and interrupted like any other, without a fresh interpreter's imports.
        process = start_suites(
            ["-p", "fault_plugins", "--budget=smoke", f"--model={self.model}", "--results=r.db",
             "-q", *args], self.folder, suites=SUITES,
            env={"TUNEBENCH_CACHE": str(self.cache), "TUNEBENCH_TEST_PAUSE": pause,
                 "TUNEBENCH_TEST_MARKER": str(marker), **(env or {})})
        try:
            if pause:
                wait_while_running(process, marker.exists, f"the runner never paused at "
                                   f"{pause}", timeout=300)
                assert marker.read_text().split() == [pause.partition(":")[0],
                                                      str(process.pid)]
                process.send_signal(stop)
            process.wait(timeout=300)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        output = "".join(process.communicate())
        log.write_text(output)
        seen = rows(self.db, "SELECT * FROM runs ORDER BY id") if self.db.exists() else []
        self.lost.append(len(before - recorded(self.db)))
        return Stopped(process.pid, process.returncode, output, seen)


def info(run: sqlite3.Row) -> dict:
    return json.loads(run["info_json"])


@pytest.fixture(scope="module")
def lab(tiny_model_dir, tmp_path_factory) -> Lab:
    return Lab(tmp_path_factory.mktemp("faults"), tiny_model_dir)


@pytest.fixture(scope="module")
def killed_training(lab) -> Stopped:
    return lab.run(["--approach=lora"], pause="training", stop=signal.SIGKILL)


@pytest.fixture(scope="module")
def killed_saving(lab, killed_training) -> Stopped:
    return lab.run(["--approach=lora"], pause="saving", stop=signal.SIGKILL)


@pytest.fixture(scope="module")
def interrupted_scoring(lab, killed_saving) -> Stopped:
    return lab.run(["--approach=zero-shot,few-shot,lora", "--set", "few-shot.k=2"],
                   pause="scoring:lora", stop=signal.SIGINT)


@pytest.fixture(scope="module")
def killed_scoring(lab, interrupted_scoring) -> Stopped:
    return lab.run(["--approach=lora"], pause="scoring", stop=signal.SIGKILL)


@pytest.fixture(scope="module")
def rerun(lab, killed_scoring) -> Stopped:
    return lab.run(["--approach=lora"])


@pytest.fixture(scope="module")
def tampered(lab, rerun) -> tuple[Stopped, Path]:
    [candidate] = lab.candidates()
    weights = candidate / "adapter_model.safetensors"
    with weights.open("r+b") as file:
        file.truncate(weights.stat().st_size // 2)
    return lab.run(["--approach=lora"]), candidate


@pytest.fixture(scope="module")
def interrupted_training(lab, tampered) -> tuple[Stopped, dict[str, str]]:
    [candidate] = lab.candidates()
    before = file_checksums(candidate)
    return lab.run(["--approach=zero-shot,lora", "--retrain"], pause="training",
                   stop=signal.SIGINT), before


@slow
@story
def test_sigkill_while_training_leaves_a_running_row_and_no_candidate(lab, killed_training):
    assert killed_training.returncode == -signal.SIGKILL
    [run] = killed_training.seen
    assert (run["approach"], run["status"], run["pid"]) == ("lora", "running",
                                                            killed_training.pid)
    assert rows(lab.db, "SELECT count(*) FROM curves WHERE run_id = ?", run["id"])[0][0] >= 1
    assert lab.candidates() == []  # killed before saving: nothing in the cache at all
    assert integrity(lab.db) == "ok"


@slow
@story
def test_sigkill_while_saving_leaves_only_a_staging_folder(lab, killed_training, killed_saving):
    first, second = killed_saving.seen
    assert (first["status"], first["error"]) == ("interrupted", ORPHANED)  # marked on open
    assert (second["status"], second["pid"]) == ("running", killed_saving.pid)
    [staging] = lab.candidates()  # the files, no manifest, under a name no lookup uses
    assert staging.name.endswith(f".partial-{os.uname().nodename}-{killed_saving.pid}")
    assert not (staging / MANIFEST).exists() and any(staging.iterdir())


@slow
@story
def test_ctrl_c_while_scoring_keeps_finished_runs_and_says_what_was_kept(
        lab, killed_saving, interrupted_scoring):
    result = interrupted_scoring
    assert result.returncode == 2, result.output  # pytest's "interrupted"
    runs = {r["approach"]: r for r in result.seen if r["session"] == result.seen[-1]["session"]}
    assert {a: r["status"] for a, r in runs.items()} == {
        "zero-shot": "finished", "few-shot": "finished", "lora": "interrupted"}
    assert result.seen[1]["status"] == "interrupted"  # the run killed while saving
    # the dead process's staging folder is gone; the candidate was trained again, in place
    [candidate] = lab.candidates()
    assert ".partial-" not in candidate.name and cache_problem(candidate) is None
    assert info(runs["lora"])["cache_hit"] is False
    for approach in ("zero-shot", "few-shot"):
        assert rows(lab.db, "SELECT count(*) FROM examples WHERE run_id = ?",
                    runs[approach]["id"])[0][0] == 80
    lora = runs["lora"]["id"]
    metrics = rows(lab.db, "SELECT count(*) FROM metrics WHERE run_id = ?", lora)[0][0]
    examples = rows(lab.db, "SELECT count(*) FROM examples WHERE run_id = ?", lora)[0][0]
    assert examples == 40  # the choice test's rows; paused at the generation test's first metric
    assert rows(lab.db, "SELECT name FROM metrics WHERE run_id = ? ORDER BY id DESC LIMIT 1",
                lora)[0][0] == "gen_accuracy"
    assert (f"interrupted: kept 2 finished runs and {metrics} metrics, {examples} per-item "
            "rows of the interrupted run (lora, marked 'interrupted') in r.db; nothing "
            "recorded was lost") in result.output
    assert integrity(lab.db) == "ok"


@slow
@story
def test_sigkill_while_scoring_then_a_rerun_reloads_the_candidate_and_finishes(
        lab, killed_scoring, rerun):
    killed = killed_scoring.seen[-1]
    assert (killed["status"], killed["pid"]) == ("running", killed_scoring.pid)
    assert info(killed)["cache_hit"] is True
    assert rerun.returncode == 0, rerun.output
    again = {r["id"]: r for r in rerun.seen}
    assert (again[killed["id"]]["status"], again[killed["id"]]["error"]) == (
        "interrupted", ORPHANED)
    finished = rerun.seen[-1]
    assert finished["status"] == "finished" and info(finished)["cache_hit"] is True
    assert rows(lab.db, "SELECT count(*) FROM examples WHERE run_id = ?",
                finished["id"])[0][0] == 80
    # nothing recorded before was lost: every killed or interrupted run kept its rows
    assert [r["status"] for r in rerun.seen] == [
        "interrupted", "interrupted", "finished", "finished", "interrupted", "interrupted",
        "finished"]
    assert integrity(lab.db) == "ok"


@slow
@story
def test_a_truncated_candidate_is_trained_again_not_loaded(lab, tampered):
    result, candidate = tampered
    assert result.returncode == 0, result.output
    run = info(result.seen[-1])
    assert run["cache_hit"] is False
    assert run["cache_miss"] == ("adapter_model.safetensors does not match its SHA-256 in "
                                 f"{MANIFEST} (changed or truncated)")
    assert "is not used: adapter_model.safetensors does not match" in result.output  # warned
    assert result.seen[-1]["status"] == "finished"
    assert lab.candidates() == [candidate] and cache_problem(candidate) is None  # replaced


@slow
@story
def test_ctrl_c_while_training_keeps_what_finished_and_the_cached_candidate(
        lab, interrupted_training):
    result, before = interrupted_training
    assert result.returncode == 2, result.output
    session = result.seen[-1]["session"]
    runs = {r["approach"]: r for r in result.seen if r["session"] == session}
    assert (runs["lora"]["status"], runs["lora"]["error"]) == ("interrupted", "KeyboardInterrupt")
    assert runs["zero-shot"]["status"] == "finished"
    metrics = rows(lab.db, "SELECT count(*) FROM metrics WHERE run_id = ?",
                   runs["lora"]["id"])[0][0]
    assert metrics == 0  # interrupted before its candidate was ready: nothing to keep
    assert ("interrupted: kept 1 finished run and 0 metrics, 0 per-item rows of the "
            "interrupted run (lora, marked 'interrupted') in r.db") in result.output
    # --retrain was cut short: the cached candidate is still there, whole, and no staging
    [candidate] = lab.candidates()
    assert file_checksums(candidate) == before and cache_problem(candidate) is None
    assert integrity(lab.db) == "ok"


@slow
@story
def test_no_row_stored_before_a_fault_is_missing_after_it(lab, interrupted_training):
    assert lab.lost == [0] * 7  # 7 runners killed, interrupted or left to finish
    statuses = [r["status"] for r in rows(lab.db, "SELECT status FROM runs ORDER BY id")]
    assert statuses.count("finished") == 5 and statuses.count("interrupted") == 5
    assert integrity(lab.db) == "ok"


# --- several writers, and the dashboard reading meanwhile ------------------------------------


WRITER = textwrap.dedent("""
    import sys, time
    from harness.runner.store import RunRecord, Store
    db, writer, start = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    time.sleep(max(0.0, start - time.time()))
    store = Store(db)  # every process opens (the first one creates) the file at once
    for n in range(5):
        run = store.start_run(RunRecord(
            session=str(writer), approach="a", task="t", model="m", seed=n, budget="smoke",
            config={}, config_hash="c", data_hash="d", model_version="v", code_version="x",
            packages={}, device="cpu"))
        for k in range(10):
            store.add_metric(run, "s", f"m{k}", k)
        store.add_examples(run, "s", [{"item_id": str(i), "prompt": "p"} for i in range(20)])
        store.finish_run(run, "finished")
    print("retries", store.retries)
""")


@slow  # processes
@pytest.mark.parametrize("writers", [2, 4, 8])
def test_processes_opening_and_writing_one_file_at_once_lose_nothing(tmp_path, writers):
    db, start = tmp_path / "r.db", time.time() + 1.0
    processes = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(w), str(start)],
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True) for w in range(writers)]
    outputs = [p.communicate(timeout=120)[0] for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs  # no "database is locked"
    assert rows(db, "SELECT count(*), count(DISTINCT session || '/' || seed) FROM runs "
                    "WHERE status = 'finished'")[0][:] == (5 * writers, 5 * writers)
    assert rows(db, "SELECT count(*) FROM metrics")[0][0] == 50 * writers
    assert rows(db, "SELECT count(*) FROM (SELECT DISTINCT run_id, item_id FROM examples)")[
        0][0] == rows(db, "SELECT count(*) FROM examples")[0][0] == 100 * writers
    assert integrity(db) == "ok"


def test_a_dashboard_read_never_sees_half_a_run(tmp_path):
    """Another process's writes land between the two queries of one leaderboard load: the
    load still sees one state of the file (a run still running with what it had), never a
    finished run missing the metrics recorded just before it finished."""
    db = tmp_path / "r.db"
    store = Store(db)
    run = store.start_run(record())
    for k in range(3):
        store.add_metric(run, "accuracy", f"m{k}", k)
    conn = data.connect(db)
    landed = []

    def writes_between_queries(sql: str) -> None:
        if sql.lstrip().startswith("SELECT r.id AS run_id") and not landed:
            landed.append(sql)  # the metric rows are read; the runs query starts now
            for k in range(3, 6):
                store.add_metric(run, "accuracy", f"m{k}", k)
            store.finish_run(run, "finished")

    conn.set_trace_callback(writes_between_queries)
    during = data.metrics(conn, latest_only=False)
    assert landed
    assert set(during["status"]) == {"running"} and len(during) == 3
    after = data.metrics(conn, latest_only=False)
    assert set(after["status"]) == {"finished"} and len(after) == 6


@slow
@pytest.mark.parametrize("runners", [2, 4])
def test_runners_writing_one_database_while_the_dashboard_reads(tiny_model_dir, tmp_path,
                                                                runners):
    db = tmp_path / "r.db"
    # forked by the runner server: separate processes, as separate users' runners are
    processes = [start_suites(
        ["--approach=zero-shot,few-shot", "--set", "few-shot.k=2", "--budget=smoke",
         f"--model={tiny_model_dir}", f"--seed={seed}", f"--results={db}", "-q", "-k",
         "choice"], tmp_path, env={"TUNEBENCH_CACHE": str(tmp_path / "cache")}, suites=SUITES)
        for seed in range(runners)]
    seen: list[dict[int, tuple[str, int]]] = []  # per load: run -> (status, metric rows)
    exports = 0
    while any(p.poll() is None for p in processes):
        if not db.exists():
            time.sleep(0.05)
            continue
        conn = data.connect(db)
        try:
            if data.run_count(conn):
                frame = data.metrics(conn, latest_only=False)
                seen.append({int(r): (s, int(n)) for (r, s), n in
                             frame.groupby(["run_id", "status"]).size().items()})
                try:
                    export(db, tmp_path / "report.md")
                    exports += 1
                except LookupError:  # no metric yet
                    pass
        finally:
            conn.close()
        time.sleep(0.2)
    outputs = ["".join(p.communicate()) for p in processes]
    assert [p.returncode for p in processes] == [0] * runners, outputs
    assert not any("locked" in out for out in outputs)
    runs = rows(db, "SELECT id, approach, seed, status FROM runs ORDER BY id")
    assert sorted((r["approach"], r["seed"]) for r in runs) == sorted(
        (a, s) for a in ("zero-shot", "few-shot") for s in range(runners))
    assert {r["status"] for r in runs} == {"finished"}
    final = {r["run_id"]: r["n"] for r in rows(
        db, "SELECT run_id, count(*) AS n FROM metrics GROUP BY run_id")}
    assert len(set(final.values())) == 1  # every run the same metrics, none twice
    assert rows(db, "SELECT count(*) FROM (SELECT run_id, suite, name FROM metrics GROUP BY "
                    "run_id, suite, name HAVING count(*) > 1)")[0][0] == 0
    examples = rows(db, "SELECT run_id, count(*) AS n, count(DISTINCT suite || item_id) AS d "
                        "FROM examples GROUP BY run_id")
    assert [(e["n"], e["d"]) for e in examples] == [(40, 40)] * len(runs)
    assert integrity(db) == "ok"
    # the dashboard loaded while they wrote, and never saw a finished run missing a metric
    assert seen and exports
    for load in seen:
        for run_id, (status, count) in load.items():
            assert status != "finished" or count == final[run_id], (run_id, load)


# --- a results file that is not ours ---------------------------------------------------------


def _newer(path: Path, wal: bool) -> None:
    connection = sqlite3.connect(path)
    if wal:
        connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY)")
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.commit()
    connection.close()


def _other_app(path: Path, wal: bool) -> None:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE notes (body TEXT)")
    connection.commit()
    connection.close()


FOREIGN = {
    "text": (lambda path, wal: path.write_text("accuracy,0.7\n" * 50),
             "is not a tunebench results database (not an SQLite file)"),
    "another app's SQLite file": (_other_app, "is an SQLite database of something else"),
    "a newer schema": (_newer, "was written by a newer tunebench"),
    "a newer schema in WAL mode": (lambda path, wal: _newer(path, True),
                                   "was written by a newer tunebench"),
    "a truncated SQLite file": (lambda path, wal: (_other_app(path, wal), path.write_bytes(
        path.read_bytes()[:200])), "cannot be read as an SQLite database"),
}


@pytest.mark.parametrize("kind", FOREIGN)
def test_a_file_that_is_not_our_database_is_refused_untouched(tmp_path, kind):
    make, message = FOREIGN[kind]
    path = tmp_path / "r.db"
    make(path, False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ResultsFileError, match=re.escape(message)) as refused:
        Store(path)
    assert str(refused.value).startswith(str(path))
    assert "nothing was written to it" in str(refused.value)
    assert path.read_bytes() == before["r.db"]  # byte for byte
    created = {p.name for p in tmp_path.iterdir()} - set(before)
    assert created <= {"r.db-wal", "r.db-shm"} and (not created or "WAL" in kind)


def test_an_empty_or_missing_file_is_a_new_database(tmp_path):
    check_results_file(tmp_path / "missing.db")
    (tmp_path / "empty.db").touch()
    Store(tmp_path / "empty.db").close()
    assert rows(tmp_path / "empty.db", "PRAGMA user_version")[0][0] == SCHEMA_VERSION


@slow
@pytest.mark.parametrize("kind", ["text", "a newer schema"])
def test_the_runner_refuses_it_before_measuring_anything(tiny_model_dir, tmp_path, kind):
    make, message = FOREIGN[kind]
    make(tmp_path / "r.db", False)
    before = (tmp_path / "r.db").read_bytes()
    result = run_suites(["--approach=zero-shot", "--budget=smoke", f"--model={tiny_model_dir}",
                         "--results=r.db", "-q"], tmp_path, suites=["test_accuracy.py"],
                        timeout=300)
    assert result.returncode == 4, result.stdout + result.stderr  # a usage error
    assert f"ERROR: r.db {message}" in result.stderr
    assert "collected" not in result.stdout
    assert (tmp_path / "r.db").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.db"]


# --- no space left ---------------------------------------------------------------------------


FULL_DISK = textwrap.dedent("""
    import os, resource, signal, sys
    from harness.runner.store import ResultsWriteError, RunRecord, Store
    db = sys.argv[1]
    store = Store(db)
    run = store.start_run(RunRecord(
        session="s", approach="a", task="t", model="m", seed=0, budget="smoke", config={},
        config_hash="c", data_hash="d", model_version="v", code_version="x", packages={},
        device="cpu"))
    print("run", run, flush=True)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death
    largest = max(os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p))
    resource.setrlimit(resource.RLIMIT_FSIZE, (largest + 256 * 1024,) * 2)
    batch = 0
    try:
        while True:
            store.add_examples(run, "s", [{"item_id": f"{batch}-{i}", "prompt": "p" * 300}
                                          for i in range(20)])
            store.add_metric(run, "s", f"m{batch}", batch)
            print("committed", batch, flush=True)
            batch += 1
    except ResultsWriteError as error:
        print("error", error, flush=True)
        sys.exit(3)
""")


def test_a_write_that_finds_no_space_keeps_every_committed_row(tmp_path):
    db = tmp_path / "r.db"
    result = subprocess.run([sys.executable, "-c", FULL_DISK, str(db)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    committed = [int(line.split()[1]) for line in lines if line.startswith("committed")]
    assert committed == list(range(len(committed))) and len(committed) >= 3
    assert lines[-1] == (f"error no space left / file too large writing {db} (disk I/O error): "
                         "free space and rerun; nothing recorded so far is lost (this write was "
                         "rolled back)")
    assert integrity(db) == "ok"
    # every committed batch is there whole; the failed one left nothing (or landed whole,
    # when only its metric, written after its rows, failed)
    batches = Counter(r[0].split("-")[0] for r in rows(db, "SELECT item_id FROM examples"))
    assert set(batches) - {str(b) for b in committed} <= {str(len(committed))}
    assert set(batches.values()) == {20} and {str(b) for b in committed} <= set(batches)
    assert [r[0] for r in rows(db, "SELECT name FROM metrics ORDER BY id")] == [
        f"m{b}" for b in committed]
    store = Store(db)  # space again: the file takes writes
    store.add_metric(1, "s", "after", 1.0)
    store.close()


@slow
def test_the_runner_stops_at_a_full_disk_and_says_nothing_is_lost(tiny_model_dir, tmp_path):
    result = run_suites(
        ["-p", "fault_plugins", "--approach=zero-shot,few-shot", "--budget=smoke",
         f"--model={tiny_model_dir}", "--results=r.db", "-q"], tmp_path, suites=SUITES,
        env={"TUNEBENCH_TEST_FSIZE": "16384", "TUNEBENCH_TEST_DB": str(tmp_path / "r.db")},
        timeout=300)
    code, output = result.returncode, result.stdout + result.stderr
    assert code == 1, output
    message = ("no space left / file too large writing r.db (disk I/O error): free space and "
               "rerun; nothing recorded so far is lost")
    assert f"! {message}" in output  # the session stopped at the first refused write
    assert "1 failed" in output and "few-shot" not in output.split("tunebench results")[1]
    db = tmp_path / "r.db"
    assert integrity(db) == "ok"
    [run] = rows(db, "SELECT * FROM runs")
    assert run["status"] == "interrupted"
    metrics = rows(db, "SELECT count(*) FROM metrics WHERE run_id = ?", run["id"])[0][0]
    assert metrics >= 1  # the prepare suite's, written before the disk filled
    assert f"interrupted: kept 0 finished runs and {metrics} metric" in output


# --- the candidate cache's own checks --------------------------------------------------------


def test_a_candidate_is_verified_file_by_file(tmp_path):
    folder = tmp_path / "key"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\x01" * 100)
    (folder / MANIFEST).write_text(json.dumps({"sha256": file_checksums(folder)}))
    assert cache_problem(folder) is None
    (folder / "extra.bin").write_bytes(b"")
    assert cache_problem(folder) == "extra.bin was not written by training"
    (folder / "extra.bin").unlink()
    (folder / "weights.bin").write_bytes(b"\x01" * 99 + b"\x02")  # same size, one byte changed
    assert "weights.bin does not match its SHA-256" in cache_problem(folder)
    (folder / "weights.bin").unlink()
    assert cache_problem(folder) == "weights.bin is missing"
    (folder / MANIFEST).write_text(json.dumps({"info": {}, "curves": []}))  # before checksums
    assert "has no checksums" in cache_problem(folder)
    (folder / MANIFEST).write_text('{"sha256": {')  # cut short
    assert "cannot be read" in cache_problem(folder)


def test_only_staging_folders_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    host = os.uname().nodename
    names = [f"k.partial-{host}-{dead}", f"k.old-{host}-{dead}", f"k.partial-{dead}",
             f"k.partial-{host}-{os.getpid()}", f"k.partial-elsewhere-{dead}", "k"]
    for name in names:
        (tmp_path / name).mkdir()
    removed = remove_dead_staging(tmp_path)
    assert sorted(p.name for p in removed) == sorted(names[:3])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[3:])
