"""Do few-shot's intervals cover the next draw? Coverage of one run's 95% CI, before and after.

    python benchmarks/bench_draw_coverage.py [--pool 32] [--draws 8] [--runs 400]

Scores every ``sentiment`` eval item (quick budget: 512 train, 500 eval items, seed 0) on the
embedded model under each of ``--pool`` independent draws of ``k`` label-balanced
demonstrations (``plugins.prompting.pick_demonstrations`` with ``draw_seed``), then asks how
often one run's interval contains the mean accuracy over all the pool's draws (the accuracy
few-shot has, not one draw's):

- before: a run is one draw scored on every item, with the item bootstrap's CI (what a
  single few-shot run reported until draws existed); every draw of the pool is one run;
- after: a run answers each item with one of ``--draws`` draws (by ``prompt_draw``, as
  few-shot does now), the draws taken at random from the pool, with the two-stage bootstrap
  (draws, then items); ``--runs`` such runs.

The per-draw scores are saved to ``--scores`` as they are computed, so an interrupted run
continues where it stopped. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from harness.measure.evaluate import score_by_choice
from harness.measure.metrics import accuracy
from harness.models.hardware import resolve_precision
from harness.models.lm_candidate import LMCandidate
from harness.models.loading import EMBEDDED_MODEL, load_model, resolve_model
from harness.tasks.sentiment.task import SentimentTask
from plugins.prompting import as_turns, draw_seed, pick_demonstrations, prompt_draw


def draw_scores(pool: int, k: int, seed: int, path: Path) -> tuple[list[list[float]], list]:
    """Per pool draw, each eval item's right/wrong (0/1), cached in ``path``."""
    data = SentimentTask().load(seed).subset(512, 100, 500)
    done = json.loads(path.read_text()) if path.is_file() else {}
    device = torch.device("cpu")
    model, tokenizer = load_model(resolve_model(EMBEDDED_MODEL), device, torch.float32)
    precision = resolve_precision("auto", device)
    for draw in range(pool):
        if str(draw) in done:
            continue
        turns = as_turns(pick_demonstrations(data.train, k, draw_seed(seed, draw), True))

        def with_shots(messages, turns=turns):
            system = [m for m in messages if m["role"] == "system"]
            return system + turns + [m for m in messages if m["role"] != "system"]

        candidate = LMCandidate(model, tokenizer, rewrite=with_shots)
        candidate.set_precision(precision)
        started = time.perf_counter()
        rows = score_by_choice(candidate, data.eval)
        done[str(draw)] = [float(r["correct"]) for r in rows]
        path.write_text(json.dumps(done))
        print(f"draw {draw}: accuracy {np.mean(done[str(draw)]):.3f} "
              f"({time.perf_counter() - started:.0f} s, {precision.name})", flush=True)
    return [done[str(d)] for d in range(pool)], list(data.eval)


def coverage(scores: list[list[float]], items: list, draws: int, runs: int,
             seed: int) -> dict[str, object]:
    table = np.asarray(scores)  # (pool, items)
    target = float(table.mean())
    single = [accuracy(row.tolist(), seed=i) for i, row in enumerate(table)]
    rng = np.random.default_rng(seed)
    assigned = np.array([prompt_draw(e.messages, draws) for e in items])
    multi = []
    for run in range(runs):
        chosen = rng.choice(len(table), size=draws, replace=False)
        hits = table[chosen[assigned], np.arange(table.shape[1])]
        multi.append(accuracy(hits.tolist(), seed=run, clusters=assigned.tolist()))

    def share(estimates) -> float:
        return float(np.mean([e.low <= target <= e.high for e in estimates]))

    return {
        "pool_draws": len(table), "items": table.shape[1], "mean_over_draws": target,
        "per_draw_accuracy": {"min": float(table.mean(1).min()),
                              "max": float(table.mean(1).max()),
                              "std": float(table.mean(1).std(ddof=1))},
        "before_one_draw_item_ci": {"coverage": share(single), "runs": len(single),
                                    "mean_width": float(np.mean([e.high - e.low
                                                                 for e in single]))},
        "after_draws_two_stage_ci": {"draws": draws, "coverage": share(multi), "runs": runs,
                                     "mean_width": float(np.mean([e.high - e.low
                                                                  for e in multi]))},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=32, help="draws scored on every item")
    parser.add_argument("--draws", type=int, default=8, help="draws per run (few-shot's draws)")
    parser.add_argument("--runs", type=int, default=400, help="simulated runs of few-shot")
    parser.add_argument("--k", type=int, default=4, help="demonstrations per draw")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scores", type=Path, default=Path("results/draw_scores.json"))
    args = parser.parse_args()
    args.scores.parent.mkdir(parents=True, exist_ok=True)
    scores, items = draw_scores(args.pool, args.k, args.seed, args.scores)
    print(json.dumps(coverage(scores, items, args.draws, args.runs, args.seed), indent=1))


if __name__ == "__main__":
    main()
