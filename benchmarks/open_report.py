"""Tabulate a measurement of an open-ended task: every graded metric of every approach with
its CI, each approach against the best on the headline metric (paired, same items), and how
well the cheap metrics agree with each other item by item.

    python benchmarks/open_report.py --db results/open.db --task addresses

Reads only the store. For each approach, the latest finished run of the task; its metrics of
the accuracy suite, and its per-item generation rows (``accuracy.generation``), whose
``extra`` holds the graded scores (:mod:`harness.measure.text_metrics`). Agreement is
Spearman's rank correlation between two metrics over all (candidate, item) rows, and within
each candidate (the median of those); a metric that merely ranks candidates the same way as
another can still disagree about which items are good.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sqlite3
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.report_common import connect_read_only, with_ci  # noqa: E402
from harness.measure.compare import compare_by_id  # noqa: E402
from harness.measure.text_metrics import OPEN_METRICS  # noqa: E402

ORDER = ("gen_accuracy", *OPEN_METRICS, "ref_perplexity", "llm_judge_score")




def latest_runs(db: sqlite3.Connection, task: str) -> dict[str, sqlite3.Row]:
    """approach -> its latest finished main run of ``task`` (side runs apart)."""
    rows = db.execute(
        "SELECT * FROM runs WHERE id IN (SELECT MAX(id) FROM runs WHERE task = ? AND status = "
        "'finished' AND json_extract(config_json, '$.train_examples') IS NULL AND "
        "json_extract(config_json, '$.label_noise') IS NULL GROUP BY approach) ORDER BY id",
        (task,)).fetchall()
    return {r["approach"]: r for r in rows}


def item_rows(db: sqlite3.Connection, run_id: int) -> dict[str, dict]:
    """item id -> its generation row's extra (reply, graded scores, kind), with the judge's
    ``llm_judge_score`` of the item when ``--judge`` graded it."""
    out = {}
    for row in db.execute("SELECT item_id, correct, extra_json FROM examples WHERE run_id = ? "
                          "AND suite = 'accuracy.generation' ORDER BY id", (run_id,)):
        out[row["item_id"]] = {**json.loads(row["extra_json"]), "correct": row["correct"]}
    for row in db.execute("SELECT item_id, extra_json FROM examples WHERE run_id = ? AND "
                          "suite = 'judge.judge' ORDER BY id", (run_id,)):
        score = json.loads(row["extra_json"]).get("llm_judge_score")
        if row["item_id"] in out and score is not None:
            out[row["item_id"]]["llm_judge_score"] = score
    return out


def metric_table(db: sqlite3.Connection, runs: dict[str, sqlite3.Row]) -> list[str]:
    lines = ["| approach | " + " | ".join(ORDER) + " |", "|---" * (len(ORDER) + 1) + "|"]
    for approach, run in runs.items():
        cells = {m["name"]: m for m in db.execute(
            "SELECT * FROM metrics WHERE run_id = ? AND suite IN ('accuracy', 'judge')",
            (run["id"],))}
        lines.append(f"| {approach} | " + " | ".join(
            with_ci(cells[n]["value"], cells[n]["ci_low"], cells[n]["ci_high"]) if n in cells
            else "-" for n in ORDER) + " |")
    return lines


def kinds_table(db: sqlite3.Connection, runs: dict[str, sqlite3.Row], metric: str) -> list[str]:
    lines = []
    for approach, run in runs.items():
        parts = [f"{m['name'][len(metric) + 1:-1]} {with_ci(m['value'], m['ci_low'], m['ci_high'])}"
                 for m in db.execute("SELECT * FROM metrics WHERE run_id = ? AND name LIKE ?",
                                     (run["id"], f"{metric}[%"))]
        if parts:
            lines.append(f"- {approach}: " + "; ".join(parts))
    return lines


def paired_table(items: dict[str, dict[str, dict]], metric: str) -> list[str]:
    means = {a: statistics.fmean(r[metric] for r in rows.values() if metric in r)
             for a, rows in items.items() if any(metric in r for r in rows.values())}
    if not means:
        return []
    ranked = sorted(means, key=means.get, reverse=True)
    lines = [f"Paired on {metric}, every pair (B - A, B the lower-ranked):"]
    for better, approach in itertools.combinations(ranked, 2):
        found = compare_by_id({i: r[metric] for i, r in items[better].items() if metric in r},
                              {i: r[metric] for i, r in items[approach].items() if metric in r})
        if found is not None:
            lines.append(f"- {approach} - {better}: "
                         f"{with_ci(*_triple(found.delta), signed=True)}, {found.test} "
                         f"p = {found.p_value:.3g} ({found.n} items, B better on {found.fixed}, "
                         f"worse on {found.broken})")
    return lines


def _triple(estimate) -> tuple[float, float, float]:
    return estimate.value, estimate.low, estimate.high


def agreement(items: dict[str, dict[str, dict]], metrics: tuple[str, ...]) -> list[str]:
    """Spearman's rho between each pair of metrics, pooled and within candidates."""
    from scipy.stats import spearmanr

    lines = ["| metric pair | rho over all items | median rho within a candidate |",
             "|---|---|---|"]
    for a, b in itertools.combinations(metrics, 2):
        pooled_a, pooled_b, within = [], [], []
        for rows in items.values():
            pairs = [(r[a], r[b]) for r in rows.values() if a in r and b in r]
            pooled_a += [x for x, _ in pairs]
            pooled_b += [y for _, y in pairs]
            if len(pairs) > 2 and len({x for x, _ in pairs}) > 1 and len({y for _, y in pairs}) > 1:
                within.append(spearmanr(*zip(*pairs, strict=True)).statistic)
        if len(set(pooled_a)) > 1 and len(set(pooled_b)) > 1:  # else rho is undefined
            rho = spearmanr(pooled_a, pooled_b).statistic
            median = f"{statistics.median(within):.2f}" if within else "-"
            lines.append(f"| {a} / {b} | {rho:.2f} | {median} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, default=Path("results/open.db"))
    parser.add_argument("--task", default="addresses")
    args = parser.parse_args(argv)
    db = connect_read_only(args.db)
    runs = latest_runs(db, args.task)
    if not runs:
        print(f"no finished runs of task {args.task!r} in {args.db}")
        return 1
    headline = json.loads(next(iter(runs.values()))["info_json"]).get("headline_metric", "f1")
    items = {a: item_rows(db, r["id"]) for a, r in runs.items()}
    print(f"task {args.task}, headline metric {headline}; 95% bootstrap CIs\n")
    print("\n".join(metric_table(db, runs)))
    print(f"\n{headline} by kind of item:")
    print("\n".join(kinds_table(db, runs, headline)))
    print()
    for metric in dict.fromkeys((headline, "chrf", "llm_judge_score")):
        print("\n".join(paired_table(items, metric)) + "\n")
    print("\nAgreement of the metrics, item by item (Spearman's rho):\n")
    graded = (*(m for m in OPEN_METRICS if m != "exact_match"), "llm_judge_score")
    print("\n".join(agreement(items, graded)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
