"""Tabulate the validity measurements of a results database: seed spread against bootstrap
CIs, forgetting in every view, and LoRA against full fine-tuning on the same probe items.

    python benchmarks/validity_report.py --db results/validity.db
    python benchmarks/validity_report.py --db results/validity.db --compare lora full-ft

Reads only the store (``harness.runner.store``): per run and metric the value and CI; per
probe item the correctness (``examples``), so two approaches run with the same seed are
compared item by item (paired bootstrap, McNemar; Koehn, 2004; McNemar, 1947) and over seeds
with a Student-t interval of the per-seed differences.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sqlite3
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.report_common import connect_read_only  # noqa: E402
from harness.core.plugins import approaches  # noqa: E402
from harness.measure.compare import compare_by_id, seed_summary  # noqa: E402
from harness.measure.forgetting import read_forgetting  # noqa: E402

METRICS = ("accuracy", "forgetting_delta", "forgetting_delta_raw", "interference_delta",
           "nll_per_token_delta", "probe_accuracy_raw", "train_seconds")



@functools.cache
def _defaults(approach: str) -> dict:
    """The approach's default options (``{}`` for compositions and unknown names)."""
    try:
        config = approaches().get(approach).Config
    except (KeyError, AttributeError):
        return {}
    return dataclasses.asdict(config()) if config is not None else {}


def _label(row: sqlite3.Row) -> str:
    """The approach, its options that differ from the defaults, and a task other than
    sentiment: ``full-ft (learning_rate=1e-05)``."""
    config = json.loads(row["config_json"])
    defaults = _defaults(row["approach"])
    changed = [f"{k}={v}" for k, v in config.items() if k in defaults and defaults[k] != v]
    if row["task"] != "sentiment":
        changed.append(f"task={row['task']}")
    return f"{row['approach']} ({', '.join(changed)})" if changed else row["approach"]


def runs(conn: sqlite3.Connection) -> dict[tuple[str, int], int]:
    """``(label, seed) -> run id`` of the latest finished main run of each."""
    found = {}
    for row in conn.execute("SELECT id, approach, task, seed, config_json FROM runs WHERE "
                            "status = 'finished' AND config_json NOT LIKE '%train_examples%' "
                            "ORDER BY id"):
        found[(_label(row), row["seed"])] = row["id"]
    return found


def metric_cells(conn: sqlite3.Connection) -> dict[tuple[str, int], dict[str, tuple]]:
    """``(label, seed) -> metric -> (value, low, high)`` of the runs of :func:`runs`."""
    cells: dict[tuple[str, int], dict[str, tuple]] = defaultdict(dict)
    for key, run_id in runs(conn).items():
        for row in conn.execute("SELECT name, value, ci_low, ci_high FROM metrics WHERE "
                                "run_id = ? ORDER BY id", (run_id,)):
            cells[key][row["name"]] = (row["value"], row["ci_low"], row["ci_high"])
    return cells


def _fmt(cell: tuple | None) -> str:
    if cell is None:
        return "-"
    value, low, high = cell
    if low is None or high is None:
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:+.3f} [{low:+.3f}, {high:+.3f}]" if low < 0 or value < 0 else \
        f"{value:.3f} [{low:.3f}, {high:.3f}]"


def seed_table(cells: dict[tuple[str, int], dict[str, tuple]]) -> list[str]:
    """Per approach and metric: each seed's value, the mean +- sd over seeds with a t
    interval, and the mean width of one run's bootstrap CI, to compare the two spreads."""
    lines = ["| approach | metric | per seed | mean +- sd over seeds [t 95%] | mean "
             "bootstrap CI width | sd / (CI width / 3.92) |", "|---|---|---|---|---|---|"]
    labels = sorted({label for label, _ in cells})
    for label in labels:
        seeds = sorted(seed for lab, seed in cells if lab == label)
        for metric in METRICS:
            found = [cells[(label, s)][metric] for s in seeds if metric in cells[(label, s)]]
            if len(found) < 2:
                continue
            summary = seed_summary([v for v, _, _ in found])
            widths = [h - lo for _, lo, h in found if lo is not None and h is not None]
            width = sum(widths) / len(widths) if widths else float("nan")
            ratio = summary.std / (width / 3.92) if widths and width > 0 else float("nan")
            lines.append(
                f"| {label} | {metric} | {', '.join(f'{v:.3f}' for v, _, _ in found)} | "
                f"{summary.mean:.3f} +- {summary.std:.3f} [{summary.low:.3f}, "
                f"{summary.high:.3f}] | {width:.3f} | {ratio:.2f} |")
    return lines


def forgetting_table(cells: dict[tuple[str, int], dict[str, tuple]]) -> list[str]:
    lines = ["| candidate | seed | accuracy | forgetting_delta (chat) | forgetting_delta_raw | "
             "interference_delta | nll_per_token_delta | reading |",
             "|---|---|---|---|---|---|---|---|"]
    for (label, seed), metrics in sorted(cells.items()):
        if not any(name.startswith("forgetting_delta") for name in metrics):
            continue
        lines.append(f"| {label} | {seed} | " + " | ".join(_fmt(metrics.get(n)) for n in (
            "accuracy", "forgetting_delta", "forgetting_delta_raw", "interference_delta",
            "nll_per_token_delta")) + f" | {read_forgetting(metrics).sentence} |")
    return lines


def _items(conn: sqlite3.Connection, run_id: int, suite: str) -> dict[str, bool]:
    rows = conn.execute("SELECT item_id, correct FROM examples WHERE run_id = ? AND suite = ?",
                        (run_id, suite)).fetchall()
    return {r["item_id"]: bool(r["correct"]) for r in rows}


def compare(conn: sqlite3.Connection, a: str, b: str, suite: str) -> list[str]:
    """``b`` minus ``a`` (labels of :func:`runs`) on the same probe items, per seed (paired)
    and over seeds (Student t over the per-seed differences)."""
    found = runs(conn)
    seeds = sorted(seed for label, seed in found if label == a and (b, seed) in found)
    lines = [f"{b} minus {a} on `{suite}` items (probe accuracy after adaptation; the base "
             "is the same for both, so this is the difference of their forgetting deltas):",
             ""]
    per_seed = []
    for seed in seeds:
        result = compare_by_id(_items(conn, found[(a, seed)], suite),
                               _items(conn, found[(b, seed)], suite), seed=seed)
        if result is None:
            continue
        per_seed.append(result.delta.value)
        lines.append(f"- seed {seed}: {result.delta} (n={result.n}; {b} fixes {result.fixed}, "
                     f"breaks {result.broken}; McNemar p={result.p_value:.3g})")
    if len(per_seed) > 1:
        summary = seed_summary(per_seed)
        lines.append(f"- over {summary.seeds} seeds: {summary.mean:+.3f} +- {summary.std:.3f} "
                     f"(t 95% interval [{summary.low:+.3f}, {summary.high:+.3f}])")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="results database to read")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"), action="append",
                        default=[], help="two run labels (as the tables print them, e.g. "
                        "'full-ft (learning_rate=1e-05)') to compare item by item (B minus A)")
    parser.add_argument("--suites", nargs="*", default=None,
                        help="examples suites compared (default: raw and chat probes)")
    args = parser.parse_args(argv)
    if not args.db.is_file():
        parser.error(f"no results database at {args.db}")
    conn = connect_read_only(args.db)
    cells = metric_cells(conn)
    print("\n".join(["## Seeds", "", *seed_table(cells), "", "## Forgetting", "",
                     *forgetting_table(cells)]))
    for a, b in args.compare:
        for suite in args.suites or ["forgetting.general.raw", "forgetting.general"]:
            print("\n".join(["", f"## {b} against {a}", "", *compare(conn, a, b, suite)]))


if __name__ == "__main__":
    main()
