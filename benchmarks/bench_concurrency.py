"""Several processes writing one results database at once, with the dashboard reading it.

    python benchmarks/bench_concurrency.py [--writers 1,2,4,8] [--runs 3]

Each writer is a process with its own :class:`harness.runner.store.Store` on the same file,
opening it at the same moment as the others (the first creates it), then writing what a
runner writes, one transaction each: a run row, then per run 6 metrics, 2 tables
of 40 per-item rows, 10 curve points and the closing status, ``--runs`` times. All writers
start together; a reader process loads the leaderboard (``reports.data.metrics``) in a loop
meanwhile. Printed per number of writers: transactions per second over all writers, the p50
and max time one write took (waiting for the lock included), the retries after SQLite's busy
wait gave up (``Store.retries``; how many of them while opening the file), errors that reached
a writer, the reader's loads per second and whether a load ever saw a finished run with rows
missing; then the check that every row is there exactly once and ``PRAGMA integrity_check``
is ok. Exit status 1 if any of those checks fails.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.runner.store import RunRecord, Store  # noqa: E402

METRICS, EXAMPLE_TABLES, EXAMPLES, CURVE_POINTS = 6, 2, 40, 10
WRITES_PER_RUN = 1 + METRICS + EXAMPLE_TABLES + CURVE_POINTS + 1


def record(writer: int, run: int) -> RunRecord:
    return RunRecord(
        session=f"writer-{writer}", approach=f"approach-{writer}-{run}", task="sentiment",
        model="m", seed=run, budget="smoke", config={"writer": writer, "run": run},
        config_hash=f"c{writer}-{run}", data_hash="d", model_version="v",
        code_version="bench", packages={}, device="cpu")


def write(db: Path, writer: int, runs: int, start: float, out) -> None:
    """One writer process: ``runs`` runs, every write one transaction; reports its timings."""
    durations: list[float] = []
    errors: list[str] = []

    def timed(operation, *args):
        began = time.perf_counter()
        try:
            return operation(*args)
        except Exception as error:  # reported, counted: the benchmark's subject
            errors.append(f"writer {writer}: {type(error).__name__}: {error}")
            return None
        finally:
            durations.append(time.perf_counter() - began)

    rows = [{"item_id": str(i), "prompt": "p" * 200, "prediction": "x", "reference": "x",
             "correct": True} for i in range(EXAMPLES)]
    time.sleep(max(0.0, start - time.time()))
    store = timed(Store, db)  # every writer opens (and the first creates) the file at once
    if store is None:
        out.put({"writer": writer, "durations": durations, "errors": errors, "retries": 0,
                 "open_retries": 0, "ended": time.time()})
        return
    open_retries = store.retries
    for run in range(runs):
        run_id = timed(store.start_run, record(writer, run))
        if run_id is None:
            continue
        for k in range(METRICS):
            timed(lambda run_id=run_id, k=k: store.add_metric(
                run_id, "accuracy", f"m{k}", k / 10, low=0.0, high=1.0, n=EXAMPLES))
        for table in range(EXAMPLE_TABLES):
            timed(store.add_examples, run_id, f"s{table}", rows)
        for step in range(CURVE_POINTS):
            timed(store.add_curve_points, run_id, [(step, "train", "loss", 1.0)])
        timed(store.finish_run, run_id, "finished")
    out.put({"writer": writer, "durations": durations, "errors": errors,
             "retries": store.retries, "open_retries": open_retries, "ended": time.time()})
    store.close()


def read(db: Path, stop, out) -> None:
    """The dashboard's leaderboard query in a loop; a finished run must show all its metrics."""
    from reports import data

    loads, partial, errors = 0, 0, []
    while not Path(db).exists():
        time.sleep(0.01)
    began = time.perf_counter()
    while not stop.is_set():
        try:
            conn = data.connect(db)
            try:
                if data.run_count(conn) == 0:  # the dashboard's empty state
                    continue
                frame = data.metrics(conn, latest_only=False)
            finally:
                conn.close()
        except Exception:
            errors.append(traceback.format_exc(limit=1))
            continue
        loads += 1
        finished = frame[(frame["status"] == "finished") & (frame["suite"] == "accuracy")]
        partial += int((finished.groupby("run_id").size() != METRICS).sum())
    out.put({"loads": loads, "seconds": time.perf_counter() - began, "partial": partial,
             "errors": errors})


def measure(writers: int, runs: int) -> dict:
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "r.db"
        out, stop = context.Queue(), context.Event()
        reader = context.Process(target=read, args=(db, stop, out))
        reader.start()
        start = time.time() + 2.0  # every writer imported and connected, then all at once
        procs = [context.Process(target=write, args=(db, w, runs, start, out))
                 for w in range(writers)]
        for proc in procs:
            proc.start()
        reports = [out.get() for _ in procs]
        wall = max(r["ended"] for r in reports) - start
        stop.set()
        reading = out.get()
        for proc in [*procs, reader]:
            proc.join()
        store = Store(db)
        counts = {table: store.query(f"SELECT count(*) FROM {table}")[0][0]
                  for table in ("runs", "metrics", "examples", "curves")}
        duplicates = store.query(
            "SELECT count(*) FROM (SELECT run_id, name FROM metrics GROUP BY run_id, name "
            "HAVING count(*) > 1)")[0][0]
        unfinished = store.query("SELECT count(*) FROM runs WHERE status != 'finished'")[0][0]
        integrity = store.query("PRAGMA integrity_check")[0][0]
        store.close()
    durations = [d for r in reports for d in r["durations"]]
    expected = {"runs": writers * runs, "metrics": writers * runs * METRICS,
                "examples": writers * runs * EXAMPLE_TABLES * EXAMPLES,
                "curves": writers * runs * CURVE_POINTS}
    return {
        "writers": writers, "writes": len(durations), "wall": wall,
        "writes_per_second": len(durations) / wall,
        "p50_ms": 1000 * statistics.median(durations), "max_ms": 1000 * max(durations),
        "retries": sum(r["retries"] for r in reports),
        "open_retries": sum(r["open_retries"] for r in reports),
        "errors": [e for r in reports for e in r["errors"]],
        "rows_ok": counts == expected and duplicates == 0 and unfinished == 0,
        "counts": counts, "integrity": integrity,
        "reads_per_second": reading["loads"] / max(reading["seconds"], 1e-9),
        "partial_reads": reading["partial"], "read_errors": reading["errors"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", default="1,2,4,8", help="numbers of writer processes")
    parser.add_argument("--runs", type=int, default=3, help="runs each writer records")
    args = parser.parse_args()
    print(f"{WRITES_PER_RUN} writes per run, {args.runs} runs per writer")
    print("writers  writes  writes/s  p50 ms  max ms  retries         errors  reads/s  "
          "partial reads  rows  integrity")
    failed = False
    for writers in (int(n) for n in args.writers.split(",")):
        m = measure(writers, args.runs)
        print(f"{m['writers']:>7}  {m['writes']:>6}  {m['writes_per_second']:>8.0f}  "
              f"{m['p50_ms']:>6.2f}  {m['max_ms']:>6.0f}  "
              f"{m['retries']:>3} ({m['open_retries']} at open)  "
              f"{len(m['errors']) + len(m['read_errors']):>6}  {m['reads_per_second']:>7.1f}  "
              f"{m['partial_reads']:>13}  {'ok' if m['rows_ok'] else m['counts']}  "
              f"{m['integrity']}")
        for error in m["errors"][:3] + m["read_errors"][:3]:
            print("  ", error.strip())
        failed |= bool(m["errors"] or m["read_errors"] or m["partial_reads"]
                       or not m["rows_ok"] or m["integrity"] != "ok")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
