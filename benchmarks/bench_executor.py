"""The Ray executor against the local one on the same small matrix: overhead per cell.

    python benchmarks/bench_executor.py [--model smollm2-135m] [--budget smoke]

Runs ``pytest suites/test_accuracy.py --approach=zero-shot,lora --sweep lora.r=2,4
--seeds=0,1`` (6 cells) twice in fresh processes, each with an empty candidate cache and its
own results database: ``--executor local`` and ``--executor ray`` (a local Ray instance with
this machine's cores; each cell asks for 1 CPU, so cells run side by side). Prints wall time,
the time each cell took inside its Ray task, and the overhead per cell: (Ray wall time x
concurrent cells - local wall time) / cells, i.e. what a cell costs beyond its work. Without
``--model``, a tiny model built in-process (the overhead is the point, not the work); the
metric values of both runs are compared, and must agree.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MATRIX = ["--approach=zero-shot,lora", "--sweep", "lora.r=2,4", "--seeds=0,1"]


def _run(executor: str, model: str, budget: str, folder: Path) -> float:
    env = {**os.environ, "TUNEBENCH_CACHE": str(folder / "cache")}
    env.pop("RAY_ADDRESS", None)  # a local instance, started by the driver
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "suites" / "test_accuracy.py"),
         "-p", "no:cacheprovider", "-q", *MATRIX, f"--budget={budget}", f"--model={model}",
         f"--results={folder / 'r.db'}", f"--executor={executor}"],
        cwd=folder, env=env, capture_output=True, text=True,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{executor} run failed:\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
    return seconds


def _rows(db: Path, sql: str) -> list[sqlite3.Row]:
    connection = sqlite3.connect(db)
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def _values(db: Path) -> dict[tuple, float]:
    return {(r["approach"], r["seed"], r["sweep_json"], r["name"]): r["value"]
            for r in _rows(db, "SELECT r.approach, r.seed, r.sweep_json, m.name, m.value FROM "
                               "metrics m JOIN runs r ON r.id = m.run_id WHERE m.suite = "
                               "'accuracy'")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="default: a tiny in-process model")
    parser.add_argument("--budget", default="smoke")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-executor-") as tmp:
        base = Path(tmp)
        model = args.model
        if not model:
            from harness.testing import make_tiny_model

            model = str(make_tiny_model(base / "tiny"))
        walls = {}
        for executor in ("local", "ray"):
            folder = base / executor
            folder.mkdir()
            walls[executor] = _run(executor, model, args.budget, folder)
        cells = len(_rows(base / "local" / "r.db", "SELECT id FROM runs"))
        tasks = [json.loads(r["info_json"])["executor"]["task_seconds"]
                 for r in _rows(base / "ray" / "r.db", "SELECT info_json FROM runs")]
        slots = max(1, min(cells, os.cpu_count() or 1))
        agree = _values(base / "local" / "r.db") == _values(base / "ray" / "r.db")
    print(f"matrix: {cells} cells ({' '.join(MATRIX)}), budget {args.budget}, "
          f"model {args.model or 'tiny (in-process)'}, {os.cpu_count()} cores")
    print(f"local executor: {walls['local']:.1f} s wall ({walls['local'] / cells:.1f} s per cell)")
    print(f"ray executor:   {walls['ray']:.1f} s wall; inside tasks {sum(tasks):.1f} s in all, "
          f"{min(tasks):.1f}-{max(tasks):.1f} s per cell")
    overhead = (walls["ray"] * slots - walls["local"]) / cells
    print(f"overhead per cell: {overhead:.1f} s of a core ((ray wall x {slots} slots - local "
          f"wall) / {cells} cells)")
    print(f"accuracy metrics identical: {agree}")


if __name__ == "__main__":
    main()
