"""Dashboard load time on a large results database: 10,000 runs, 1,000,000 example rows.

Seeds a temporary database with ``harness.runner.store``'s schema (bulk ``executemany`` in one
transaction), then measures (1) the leaderboard's data load through ``reports.data`` and
``reports.analysis`` on a cold connection, and (2) Streamlit ``AppTest`` renders of the
leaderboard (the default page), the decision report and the examples browser, after one
warm-up render on a small database so that import time is not counted. The issue's
requirement: the leaderboard renders in under 2 s.

    python benchmarks/bench_dashboard.py [--runs 10000] [--examples-per-run 100]
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.runner.store import SCHEMA, SCHEMA_VERSION  # noqa: E402
from reports import analysis, data  # noqa: E402
from reports.data import ENV_VAR  # noqa: E402
from reports.export import export  # noqa: E402
from reports.sample import KIND, write_sample  # noqa: E402

TASKS = ("sentiment", "kb-qa", "topic", "intent", "support")
APPROACHES = ("zero-shot", "few-shot", "rag", "lora", "qlora", "adapters", "peft", "full-ft",
              "dpo", "lora+rag")
METRICS = (("accuracy", "accuracy", 1), ("accuracy", "macro_f1", 1),
           ("accuracy", "gen_accuracy", 1), ("latency", "latency_p50_ms", 0),
           ("latency", "latency_p95_ms", 0), ("latency", "latency_p99_ms", 0),
           ("latency", "train_cost", 0), ("prepare", "train_seconds", 0),
           ("prepare", "trainable_params", None), ("prepare", "artifact_bytes", 0),
           ("prepare", "prepare_seconds", 0), ("forgetting", "forgetting_delta", 1),
           ("forgetting", "items_fixed", 1), ("forgetting", "items_broken", 0),
           ("overfitting", "overfit_verdict", None))


def seed(path: Path, runs: int, examples_per_run: int) -> None:
    """``runs`` runs spread over tasks x approaches x 2 models x seeds x 2 budgets, each with
    every metric of ``METRICS``, ``examples_per_run`` example rows, and training curves."""
    rng = random.Random(0)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(f"BEGIN; {SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
    db.execute("BEGIN")
    run_rows, metric_rows, example_rows, curve_rows = [], [], [], []
    for run_id in range(1, runs + 1):
        k = run_id - 1
        task, approach = TASKS[k % len(TASKS)], APPROACHES[(k // len(TASKS)) % len(APPROACHES)]
        model = ("smollm2-135m", "smollm2-360m")[(k // 50) % 2]
        budget, seed_ = ("smoke", "quick")[(k // 100) % 2], k // 200
        run_rows.append((run_id, "bench", approach, task, model, seed_, budget, "{}",
                         f"h-{approach}", "d1", "m1", "c1", "{}", "cpu", "bf16",
                         KIND.get(approach), "host", 1, "finished",
                         None, "{}", 1.7e9 + run_id, 1.7e9 + run_id + 60))
        base = rng.random()
        for suite, name, higher in METRICS:
            value = base if higher == 1 else rng.random() * 1000
            metric_rows.append((run_id, suite, name, value, value - 0.05, value + 0.05, 500,
                                higher, "{}", 1.7e9))
        for item in range(examples_per_run):
            hit = rng.random() < base
            example_rows.append((run_id, "accuracy.choice", f"i{item}",
                                 f"Review {item}: an example prompt of ordinary length here.",
                                 "positive" if hit else "negative", "positive", int(hit), None,
                                 rng.random() * 200, "{}"))
        if approach not in {"zero-shot", "few-shot", "rag"}:
            curve_rows += [(run_id, step, split, "loss", 2.0 / (1 + step))
                           for step in range(0, 100, 10) for split in ("train", "validation")]
        if len(example_rows) >= 200_000:
            _flush(db, run_rows, metric_rows, example_rows, curve_rows)
    _flush(db, run_rows, metric_rows, example_rows, curve_rows)
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def _flush(db: sqlite3.Connection, runs: list, metrics: list, examples: list,
           curves: list) -> None:
    db.executemany(f"INSERT INTO runs VALUES ({','.join('?' * 23)})", runs)
    db.executemany("INSERT INTO metrics (run_id, suite, name, value, ci_low, ci_high, n, "
                   "higher_is_better, extra_json, recorded_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                   metrics)
    db.executemany("INSERT INTO examples (run_id, suite, item_id, prompt, prediction, "
                   "reference, correct, score, latency_ms, extra_json) "
                   "VALUES (?,?,?,?,?,?,?,?,?,?)", examples)
    db.executemany("INSERT INTO curves (run_id, step, split, name, value) VALUES (?,?,?,?,?)",
                   curves)
    for rows in (runs, metrics, examples, curves):
        rows.clear()


def leaderboard_load(path: Path) -> tuple[float, int]:
    """Seconds for what the leaderboard page loads and computes (cold connection)."""
    started = time.perf_counter()
    conn = data.connect(path)
    options = data.filter_options(conn)
    names = list(dict.fromkeys(data.metric_catalog(conn)["name"]))
    shown = [n for n in analysis.headline_metrics() if n in names][:6]
    long = data.metrics(conn, names=shown, filters={k: options[k] for k in
                                                     ("task", "model", "budget", "seed")})
    table = analysis.leaderboard(long[long["train_examples"].isna()], shown, shown[0])
    conn.close()
    return time.perf_counter() - started, len(table)


def render(path: Path, page: str | None) -> float:
    """Seconds for one AppTest run of ``page`` (the default page when ``None``)."""
    from streamlit.testing.v1 import AppTest

    os.environ[ENV_VAR] = str(path)
    app = AppTest.from_file(str(ROOT / "reports" / "app.py"), default_timeout=120)
    if page is None:
        started = time.perf_counter()
        app.run()
    else:
        app.run()
        app.switch_page(f"app_pages/{page}.py")
        started = time.perf_counter()
        app.run()
    elapsed = time.perf_counter() - started
    if app.exception:
        raise RuntimeError(app.exception[0].value)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--examples-per-run", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        small, big = Path(folder) / "small.db", Path(folder) / "big.db"
        write_sample(small)
        started = time.perf_counter()
        seed(big, args.runs, args.examples_per_run)
        print(f"seeded {args.runs:,} runs, {args.runs * args.examples_per_run:,} examples, "
              f"{args.runs * len(METRICS):,} metrics in {time.perf_counter() - started:.1f} s "
              f"({big.stat().st_size / 2**20:.0f} MiB)")
        seconds, rows = leaderboard_load(big)
        print(f"leaderboard data load (cold connection): {seconds:.3f} s, {rows:,} rows")
        started = time.perf_counter()
        export(big, Path(folder) / "report.html")
        print(f"static export (HTML, every task): {time.perf_counter() - started:.3f} s")
        render(small, None)  # warm-up: imports and Streamlit start-up are not measured
        for label, page in (("leaderboard (first render, cold cache)", None),
                            ("leaderboard (rerun, warm cache)", None),
                            ("decision report", "decision"), ("examples browser", "examples"),
                            ("provenance", "provenance"), ("latency", "latency")):
            print(f"AppTest render, {label}: {render(big, page):.3f} s")


if __name__ == "__main__":
    main()
