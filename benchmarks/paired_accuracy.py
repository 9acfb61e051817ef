"""Two results databases of the same comparison, paired item by item per approach.

    python benchmarks/paired_accuracy.py BEFORE.db AFTER.db [--suite accuracy.choice]

For each approach in both (the latest run of each), prints the accuracy before and after, the
paired difference (after minus before) with its paired-bootstrap CI and McNemar's p, the
items whose prediction changed, and the items whose best choices tied exactly (read from the
stored choice log-likelihoods, so databases written before ``tied_items`` existed count too).
Used to re-measure the default comparison when the yardstick itself changes.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

from harness.measure.compare import compare_by_id


def latest_rows(path: Path, suite: str) -> dict[str, dict[str, dict]]:
    """``approach -> item_id -> row`` of the latest run of each approach."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    latest = {row["approach"]: row["id"] for row in conn.execute(
        "SELECT approach, MAX(id) AS id FROM runs GROUP BY approach")}
    out: dict[str, dict[str, dict]] = {}
    for approach, run_id in latest.items():
        rows = conn.execute("SELECT item_id, prediction, correct, extra_json FROM examples "
                            "WHERE run_id = ? AND suite = ?", (run_id, suite)).fetchall()
        if rows:
            out[approach] = {r["item_id"]: {"prediction": r["prediction"],
                                            "correct": bool(r["correct"]),
                                            "extra": json.loads(r["extra_json"] or "{}")}
                             for r in rows}
    return out


def ties(rows: dict[str, dict]) -> int:
    """Items whose highest choice log-likelihood is shared by two choices or more."""
    count = 0
    for row in rows.values():
        scores = list(row["extra"].get("choice_logprobs", {}).values())
        count += bool(scores) and scores.count(max(scores)) > 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--suite", default="accuracy.choice")
    args = parser.parse_args()
    before, after = latest_rows(args.before, args.suite), latest_rows(args.after, args.suite)
    print("| approach | before | after | after - before [95% CI] | McNemar p | predictions "
          "changed | tied before / after |")
    print("|---|---|---|---|---|---|---|")
    for approach in sorted(set(before) & set(after)):
        a, b = before[approach], after[approach]
        shared = sorted(set(a) & set(b))
        comparison = compare_by_id({i: a[i]["correct"] for i in shared},
                                   {i: b[i]["correct"] for i in shared})
        changed = sum(a[i]["prediction"] != b[i]["prediction"] for i in shared)
        acc_a = sum(a[i]["correct"] for i in shared) / len(shared)
        acc_b = sum(b[i]["correct"] for i in shared) / len(shared)
        delta = comparison.delta
        print(f"| {approach} | {acc_a:.3f} | {acc_b:.3f} | {delta.value:+.3f} "
              f"[{delta.low:+.3f}, {delta.high:+.3f}] | {comparison.p_value:.3g} | "
              f"{changed} of {len(shared)} | {ties(a)} / {ties(b)} |")


if __name__ == "__main__":
    main()
