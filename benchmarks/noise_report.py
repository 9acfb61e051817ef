"""Tabulate a label-noise measurement (``--label-noise``): accuracy against the share of
corrupted training answers per approach, whether the ranking of the approaches changes as
noise grows (paired comparisons on the same eval items), and how well each candidate's
suspect labels find the corrupted items.

    python benchmarks/noise_report.py --db results/noise.db

Reads only the store. For each approach, the latest finished clean run carrying
``noise_robustness[...]`` metrics; its noisy side runs are the ``run_id`` of each metric. Two
approaches at the same noise share are compared item by item on their stored choice rows
(paired bootstrap CI and McNemar's exact test, :func:`harness.measure.compare.compare_by_id`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sqlite3
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.report_common import connect_read_only, with_ci  # noqa: E402
from harness.measure.compare import compare_by_id  # noqa: E402

SHARE = re.compile(r"^(noise_robustness|noise_drop|noise_detection_precision|"
                   r"noise_detection_recall)\[([0-9.]+)\]$")




def clean_runs(db: sqlite3.Connection, task: str) -> dict[str, int]:
    """approach -> its latest finished clean run with a noise curve."""
    rows = db.execute(
        "SELECT r.approach, MAX(r.id) AS id FROM runs r JOIN metrics m ON m.run_id = r.id "
        "WHERE r.task = ? AND r.status = 'finished' AND m.name LIKE 'noise_robustness[%' "
        "GROUP BY r.approach", (task,)).fetchall()
    return {r["approach"]: r["id"] for r in rows}


def curve(db: sqlite3.Connection, run_id: int) -> dict[tuple[str, float], sqlite3.Row]:
    """(metric, share) -> its metric row."""
    out = {}
    for row in db.execute("SELECT * FROM metrics WHERE run_id = ?", (run_id,)):
        match = SHARE.match(row["name"])
        if match:
            out[(match.group(1), float(match.group(2)))] = row
    return out


def item_hits(db: sqlite3.Connection, run_id: int) -> dict[str, bool]:
    """item id -> correct, from a run's stored choice (else generation) rows."""
    for suite in ("accuracy.choice", "accuracy.generation"):
        rows = db.execute("SELECT item_id, correct FROM examples WHERE run_id = ? AND suite = ?",
                          (run_id, suite)).fetchall()
        if rows:
            return {r["item_id"]: bool(r["correct"]) for r in rows}
    return {}


def report(db: sqlite3.Connection, task: str) -> str:
    runs = clean_runs(db, task)
    if not runs:
        return f"no label-noise curve recorded for task {task!r}"
    curves = {a: curve(db, i) for a, i in runs.items()}
    shares = sorted({s for c in curves.values() for (name, s) in c if name == "noise_robustness"})
    lines = [f"## Accuracy against label noise (task {task}; 95% CIs)", "",
             "| approach | " + " | ".join(f"noise {s:g}" for s in shares) + " |",
             "|---|" + "---|" * len(shares)]
    for approach, c in sorted(curves.items()):
        cells = []
        for s in shares:
            acc = c.get(("noise_robustness", s))
            drop = c.get(("noise_drop", s))
            text = with_ci(acc["value"], acc["ci_low"], acc["ci_high"]) if acc else "-"
            if drop is not None:
                text += f"<br>drop {with_ci(drop['value'], drop['ci_low'], drop['ci_high'], True)}"
            cells.append(text)
        lines.append(f"| {approach} | " + " | ".join(cells) + " |")

    lines += ["", "## Ranking at each noise share, and paired differences of neighbours", ""]
    for s in shares:
        scored = {a: c[("noise_robustness", s)] for a, c in curves.items()
                  if ("noise_robustness", s) in c}
        order = sorted(scored, key=lambda a: -scored[a]["value"])
        hits = {a: item_hits(db, runs[a] if s == 0 else
                             json.loads(scored[a]["extra_json"])["run_id"]) for a in order}
        parts = []
        for better, worse in itertools.pairwise(order):
            comparison = compare_by_id(hits[worse], hits[better]) if hits[better] else None
            if comparison is None:
                parts.append(f"{better} > {worse} (no per-item rows)")
                continue
            d = comparison.delta
            parts.append(f"{better} - {worse} = {with_ci(d.value, d.low, d.high, True)} "
                         f"(McNemar p={comparison.p_value:.3g})")
        lines.append(f"- noise {s:g}: " + " > ".join(order))
        lines += [f"  - {p}" for p in parts]

    lines += ["", "## Suspect labels against the injected noise (confident learning)", "",
              "| approach | noise | flagged | precision | recall | in-sample |",
              "|---|---|---|---|---|---|"]
    for approach, c in sorted(curves.items()):
        for s in shares:
            recall = c.get(("noise_detection_recall", s))
            if recall is None:
                continue
            precision = c.get(("noise_detection_precision", s))
            extra = json.loads(recall["extra_json"])
            ptext = (with_ci(precision["value"], precision["ci_low"], precision["ci_high"])
                     if precision else "- (none flagged)")
            lines.append(f"| {approach} | {s:g} | {extra['flagged']} | {ptext} | "
                         f"{with_ci(recall['value'], recall['ci_low'], recall['ci_high'])} | "
                         f"{'yes' if extra.get('in_sample') else 'no'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, default=Path("results/noise.db"))
    parser.add_argument("--task", default="sentiment")
    args = parser.parse_args()
    if not args.db.exists():
        raise SystemExit(f"{args.db}: no such results file")
    print(report(connect_read_only(args.db), args.task))


if __name__ == "__main__":
    main()
