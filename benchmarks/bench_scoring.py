"""Evaluation throughput of the LM candidate on the sentiment eval split.

    python benchmarks/bench_scoring.py [--items 200] [--k 4]

Reports items/s for constrained-choice scoring and for generation (8 new tokens), zero-shot
and few-shot, with the shared-prefix cache on and off, and the useful (prompt) tokens/s.
"""

from __future__ import annotations

import argparse
import time

import torch

import harness.models.scoring as scoring_module
from harness.models.lm_candidate import LMCandidate
from harness.models.loading import EMBEDDED_MODEL, load_model, resolve_model
from harness.tasks.sentiment.task import SentimentTask
from plugins.prompting import pick_demonstrations


def timed(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--k", type=int, default=4, help="few-shot examples")
    args = parser.parse_args()
    data = SentimentTask().load(0)
    items = data.eval[: args.items]
    prompts, choices = [e.messages for e in items], [e.choices for e in items]
    model, tokenizer = load_model(resolve_model(EMBEDDED_MODEL), torch.device("cpu"),
                                  torch.float32)
    shots = pick_demonstrations(data.train, args.k, 0, True)
    demo = [t for s in shots for t in (s.messages[-1], {"role": "assistant", "content": s.answer})]
    candidates = {
        "zero-shot": LMCandidate(model, tokenizer),
        f"few-shot k={args.k}": LMCandidate(model, tokenizer, rewrite=lambda m: [m[0], *demo,
                                                                                 *m[1:]]),
    }
    print(f"torch threads: {torch.get_num_threads()}, items: {len(items)}")
    print("candidate        prefix cache  prompt tokens  choice items/s  tokens/s  gen items/s")
    default = scoring_module.MIN_SHARED_PREFIX
    for name, candidate in candidates.items():
        tokens = sum(len(candidate.prompt_ids(p)) for p in prompts)
        candidate.score_choices(prompts[:8], choices[:8])  # warm-up
        for cached in (True, False):
            scoring_module.MIN_SHARED_PREFIX = default if cached else 10**9
            choice_seconds = timed(candidate.score_choices, prompts, choices)
            generate_seconds = timed(candidate.generate, prompts[:64], 8)
            print(f"{name:<16} {'on' if cached else 'off':<13} {tokens / len(items):>13.0f}  "
                  f"{len(items) / choice_seconds:>14.1f}  {tokens / choice_seconds:>8.0f}  "
                  f"{64 / generate_seconds:>11.1f}")
    scoring_module.MIN_SHARED_PREFIX = default


if __name__ == "__main__":
    main()
