"""The results store: schema, atomic writes, interrupted runs."""

import sqlite3
import subprocess
import sys

import pytest

from harness.runner.store import SCHEMA_VERSION, RunRecord, Store


def record(**changes) -> RunRecord:
    values = dict(
        session="s", approach="zero-shot", task="sentiment", model="m", seed=0, budget="smoke",
        config={"k": 4}, config_hash="c", data_hash="d", model_version="v", code_version="git:x",
        packages={"torch": "2"}, device="cpu",
    )
    return RunRecord(**{**values, **changes})


def test_schema_and_wal(tmp_path):
    store = Store(tmp_path / "r.db")
    tables = {row[0] for row in store.query("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "metrics", "examples", "curves"} <= tables
    assert store.query("PRAGMA journal_mode")[0][0] == "wal"
    assert store.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION


@pytest.mark.parametrize("version", [1, 2, 3])
def test_an_older_database_gains_the_precision_kind_and_sweep_columns(tmp_path, version):
    path = tmp_path / "old.db"
    store = Store(path)
    old = store.start_run(record())
    dropped = "ALTER TABLE runs DROP COLUMN sweep_json; ALTER TABLE runs DROP COLUMN cell_hash;"
    if version <= 2:
        dropped += "ALTER TABLE runs DROP COLUMN kind;"
    if version == 1:
        dropped += "ALTER TABLE runs DROP COLUMN precision;"
    store.db.executescript(f"{dropped} PRAGMA user_version={version};")
    store.close()

    upgraded = Store(path)
    assert upgraded.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION
    [row] = upgraded.query(
        "SELECT precision, kind, sweep_json, cell_hash FROM runs WHERE id = ?", (old,))
    assert tuple(row) == ("fp32", None, "{}", None)
    new = upgraded.start_run(record(precision="bf16", kind="retrieval",
                                    sweep={"lora.r": 8}, cell_hash="h"))
    [row] = upgraded.query(
        "SELECT precision, kind, sweep_json, cell_hash FROM runs WHERE id = ?", (new,))
    assert tuple(row) == ("bf16", "retrieval", '{"lora.r": 8}', "h")


def test_a_run_with_metrics_examples_and_curves_round_trips(tmp_path):
    store = Store(tmp_path / "r.db")
    run = store.start_run(record())
    store.add_metric(run, "accuracy", "accuracy", 0.7, low=0.6, high=0.8, n=100,
                     higher_is_better=True)
    store.add_examples(run, "accuracy", [
        {"item_id": "1", "prompt": "p", "prediction": "a", "reference": "a", "correct": True},
    ])
    store.add_curve_points(run, [(10, "train", "loss", 1.5), (10, "validation", "loss", 1.7)])
    store.finish_run(run, "finished")
    store.close()

    reopened = Store(tmp_path / "r.db")
    row = reopened.query("SELECT * FROM runs")[0]
    assert row["status"] == "finished" and row["finished_at"] >= row["started_at"]
    assert row["config_json"] == '{"k": 4}'
    metric = reopened.query("SELECT * FROM metrics")[0]
    assert tuple(metric)[3:8] == ("accuracy", 0.7, 0.6, 0.8, 100)
    assert reopened.query("SELECT correct FROM examples")[0][0] == 1
    assert len(reopened.query("SELECT * FROM curves")) == 2


def test_a_failed_write_leaves_nothing_half_written(tmp_path):
    store = Store(tmp_path / "r.db")
    run = store.start_run(record())
    store.add_metric(run, "accuracy", "accuracy", 0.5)
    rows = [{"item_id": "1", "prompt": "p"}, {"item_id": "2"}]  # second row lacks 'prompt'
    with pytest.raises(KeyError):
        store.add_examples(run, "accuracy", rows)
    with pytest.raises(KeyboardInterrupt), store.transaction() as db:
        db.execute("INSERT INTO metrics (run_id, suite, name, value, recorded_at) "
                   "VALUES (?, 's', 'half', 1, 0)", (run,))
        raise KeyboardInterrupt
    assert len(store.query("SELECT * FROM examples")) == 0
    assert [r["name"] for r in store.query("SELECT name FROM metrics")] == ["accuracy"]


def test_runs_of_a_dead_process_are_marked_interrupted_on_open(tmp_path):
    store = Store(tmp_path / "r.db")
    run = store.start_run(record())
    store.add_metric(run, "accuracy", "accuracy", 0.5)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    store.db.execute("UPDATE runs SET pid = ? WHERE id = ?", (int(dead.stdout), run))
    live = store.start_run(record(approach="few-shot"))
    store.close()

    reopened = Store(tmp_path / "r.db")
    status = dict(reopened.query("SELECT approach, status FROM runs"))
    assert status == {"zero-shot": "interrupted", "few-shot": "running"}  # ours is alive
    assert len(reopened.query("SELECT * FROM metrics WHERE run_id = ?", (run,))) == 1
    assert live


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "r.db"
    sqlite3.connect(path).execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="newer tunebench"):
        Store(path)
