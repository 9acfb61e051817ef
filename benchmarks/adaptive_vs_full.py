"""One comparison measured twice, in full and with ``--adaptive on``: same answer, fewer items?

    pytest suites/test_accuracy.py --approach=all --budget=quick --results=full.db
    pytest suites/test_accuracy.py --approach=all --budget=quick --adaptive on --results=adaptive.db
    python benchmarks/adaptive_vs_full.py full.db adaptive.db

For each approach (the latest run in each file) and each adaptive metric: the full evaluation's
estimate and bootstrap CI, the adaptive estimate and its confidence sequence, whether the
adaptive estimate lies inside the full CI, items scored of those available and why it stopped.
Then each file's recommendation (``reports.decision.report``, default margin and alpha) and
whether they agree. Prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

from reports import data, example_data
from reports.decision import report

METRICS = ("accuracy", "gen_accuracy")


def latest_metrics(path: Path) -> dict[tuple[str, str], dict]:
    """``(approach, metric) -> row`` (value, CI, extra) of each approach's latest run."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    out = {}
    for row in conn.execute(
            "SELECT r.approach, m.name, m.value, m.ci_low, m.ci_high, m.n, m.extra_json "
            "FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.id IN "
            "(SELECT MAX(id) FROM runs GROUP BY approach) ORDER BY m.id"):
        if row["name"] in METRICS:
            out[(row["approach"], row["name"])] = {**dict(row),
                                                   "extra": json.loads(row["extra_json"])}
    return out


def recommendation(path: Path) -> str:
    conn = sqlite3.connect(path)
    long = data.main_runs(data.metrics(conn))
    _, found, _ = report(long, items=lambda suite, ids, value: example_data.item_scores_by_run(
        conn, ids, suite, value))
    return found.sentence if found else "no recommendation"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("full", type=Path)
    parser.add_argument("adaptive", type=Path)
    args = parser.parse_args()
    full, adaptive = latest_metrics(args.full), latest_metrics(args.adaptive)
    print("| approach | metric | full [95% bootstrap CI] | adaptive [95% sequence] | inside "
          "full CI | items | stopped |")
    print("|---|---|---|---|---|---|---|")
    scored = available = 0
    for key in sorted(full.keys() & adaptive.keys()):
        f, a = full[key], adaptive[key]
        extra = a["extra"]
        n, of = extra.get("n_scored", a["n"]), extra.get("n_available", f["n"])
        scored, available = scored + n, available + of
        inside = f["ci_low"] <= a["value"] <= f["ci_high"]
        print(f"| {key[0]} | {key[1]} | {f['value']:.3f} [{f['ci_low']:.3f}, {f['ci_high']:.3f}]"
              f" | {a['value']:.3f} [{a['ci_low']:.3f}, {a['ci_high']:.3f}] | "
              f"{'yes' if inside else 'NO'} | {n} of {of} | "
              f"{extra.get('stopped', 'full (several draws)' if n == of else '-')} |")
    print(f"\nitems scored: {scored} of {available} ({scored / available:.0%})\n")
    said = {name: recommendation(path) for name, path in (("full", args.full),
                                                         ("adaptive", args.adaptive))}
    for name, sentence in said.items():
        print(f"- {name}: {sentence}")
    first_words = {name: sentence.split(" (")[0] for name, sentence in said.items()}
    print(f"\nsame recommended candidate: {len(set(first_words.values())) == 1}")


if __name__ == "__main__":
    main()
