"""Do a trained approach's intervals cover other seeds? Coverage over training seeds.

    pytest suites/test_accuracy.py --approach=peft --seeds=0,1,2,3,4,5 --budget=quick \\
        -k choice --results=results/seeds.db
    python benchmarks/bench_seed_coverage.py results/seeds.db --approach peft --per-run 3

Reads every seed's per-item rows of one approach (``accuracy.choice``) and asks how often one
run's 95% interval contains the mean accuracy over all the seeds:

- before: a run is one seed, with the item bootstrap's CI (what a single run reports);
- after: a run is ``--per-run`` seeds (``--seeds``), with the two-stage bootstrap over the
  seeds' items (seeds, then items: the summary's interval over seeds,
  ``harness.runner.summary.over_seeds``); every subset of that size is one run.

Each seed draws its own data splits, training order and initialisation, so the mean over all
seeds is the approach's accuracy, not one training run's. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sqlite3
from pathlib import Path

import numpy as np

from harness.measure.metrics import accuracy
from harness.runner.summary import over_seeds


def seed_rows(path: Path, approach: str) -> dict[int, list[float]]:
    """``seed -> [correct]`` of the latest run of ``approach`` for each seed."""
    conn = sqlite3.connect(path)
    runs = dict(conn.execute("SELECT seed, MAX(id) FROM runs WHERE approach = ? GROUP BY seed",
                             (approach,)).fetchall())
    return {int(seed): [float(c) for (c,) in conn.execute(
        "SELECT correct FROM examples WHERE run_id = ? AND suite = 'accuracy.choice' "
        "ORDER BY id", (run_id,))] for seed, run_id in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--approach", default="peft")
    parser.add_argument("--per-run", type=int, default=3, help="seeds per run (--seeds)")
    args = parser.parse_args()
    rows = seed_rows(args.results, args.approach)
    per_seed = {seed: float(np.mean(hits)) for seed, hits in rows.items()}
    target = float(np.mean(list(per_seed.values())))
    single = [accuracy(hits, seed=seed) for seed, hits in rows.items()]
    multi = []
    for subset in itertools.combinations(sorted(rows), args.per_run):
        multi.append(over_seeds([[(v, None) for v in rows[s]] for s in subset],
                                [per_seed[s] for s in subset]))

    def share(intervals) -> float:
        return float(np.mean([low <= target <= high for low, high in intervals]))

    print(json.dumps({
        "approach": args.approach, "seeds": len(rows), "per_seed_accuracy": per_seed,
        "mean_over_seeds": target,
        "before_one_seed_item_ci": {"coverage": share((e.low, e.high) for e in single),
                                    "runs": len(single),
                                    "mean_width": float(np.mean([e.high - e.low
                                                                 for e in single]))},
        "after_seeds_two_stage_ci": {"seeds_per_run": args.per_run, "runs": len(multi),
                                     "coverage": share((s.low, s.high) for s in multi),
                                     "mean_width": float(np.mean([s.high - s.low
                                                                  for s in multi]))},
    }, indent=1))


if __name__ == "__main__":
    main()
