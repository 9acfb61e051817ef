"""What the graded scores of free replies cost, apart from generating the replies.

    python benchmarks/bench_text_metrics.py [--items 500]

On the ``addresses`` eval split, with the references themselves as replies (the scores do not
depend on what the text says, only on its length): the overlap scores (exact match, token F1,
ROUGE-L, chrF, BLEU), the semantic similarity (all-MiniLM-L6-v2, its load apart) and the
reference likelihood under the embedded model (bf16 where the CPU runs it natively, as the
suites do), each timed alone, in seconds and milliseconds per item.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from harness.measure.text_metrics import (  # noqa: E402
    overlap_scores,
    reference_logprobs,
    semantic_similarities,
)
from harness.models.hardware import resolve_precision  # noqa: E402
from harness.models.lm_candidate import LMCandidate  # noqa: E402
from harness.models.loading import EMBEDDED_MODEL, load_model, resolve_model  # noqa: E402
from harness.retrieval.retrievers import EMBEDDED_EMBEDDER, load_encoder  # noqa: E402
from harness.tasks.addresses.task import AddressesTask  # noqa: E402


def timed(label: str, n: int, call) -> None:
    started = time.perf_counter()
    call()
    seconds = time.perf_counter() - started
    print(f"{label:<40} {seconds:7.2f} s  {seconds * 1000 / n:7.2f} ms/item")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=500)
    args = parser.parse_args()
    items = AddressesTask().load(0).eval[: args.items]
    replies = [e.answer for e in items]
    n = len(items)
    timed("overlap scores (5 metrics)", n,
          lambda: [overlap_scores(r, e.answer) for r, e in zip(replies, items, strict=True)])
    timed("sentence-embedding model load", 1, lambda: load_encoder(EMBEDDED_EMBEDDER))
    timed("semantic similarity", n,
          lambda: [semantic_similarities(replies[i:i + 64], [e.answer for e in items[i:i + 64]])
                   for i in range(0, n, 64)])
    device = torch.device("cpu")
    precision = resolve_precision("auto", device)
    model, tokenizer = load_model(resolve_model(EMBEDDED_MODEL), device,
                                  precision.weights_dtype(False))
    candidate = LMCandidate(model, tokenizer)
    candidate.set_precision(precision)
    timed(f"reference likelihood ({precision.name})", n,
          lambda: [reference_logprobs(candidate, items[i:i + 64]) for i in range(0, n, 64)])


if __name__ == "__main__":
    main()
