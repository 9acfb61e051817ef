"""QLoRA's 4-bit layers handing over in the autocast dtype (harness/models/quantized.py) against
bitsandbytes' own ``Linear4bit``, on the same trained adapters, with LoRA's beside them.

    pytest suites/test_accuracy.py --approach=lora,qlora --budget=quick   # trains both
    python benchmarks/bench_qlora_cpu.py ~/.cache/tunebench/candidates/qlora/<key> \\
        ~/.cache/tunebench/candidates/lora/<key> [rounds]

Interleaved in one process, median wall time of each call over the rounds (default 3):
choice scoring of 100 sentiment items, time to first token (5 one-token requests), 16 replies
of 16 tokens, rolling log-likelihood of 40 texts; then how far the scores moved."""

from __future__ import annotations

import statistics
import sys
import time

import torch
from bitsandbytes.nn import Linear4bit
from peft import PeftModel
from transformers import BitsAndBytesConfig

from harness.models.lm_candidate import LMCandidate
from harness.models.quantized import AutocastLinear4bit
from harness.runner.session import ExperimentSession, SessionOptions


def main(qlora_dir: str, lora_dir: str, rounds: int = 3) -> None:
    session = ExperimentSession(SessionOptions(approaches=["lora"], budget="quick"))
    items = session.task_data().eval[:100]
    prompts, choices = [e.messages for e in items], [e.choices for e in items]
    texts = [e.messages[-1]["content"] for e in items[:40]]
    quantized = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                   bnb_4bit_use_double_quant=True,
                                   bnb_4bit_compute_dtype=session.precision.compute_dtype)

    def candidate(folder: str, *, quantize: bool, autocast_layers: bool = True) -> LMCandidate:
        base, tokenizer = session.load_base(**(
            {"quantization_config": quantized} if quantize else {}))
        model = PeftModel.from_pretrained(base, folder).eval()
        if not autocast_layers:
            for module in model.modules():
                if type(module) is AutocastLinear4bit:
                    module.__class__ = Linear4bit
        made = LMCandidate(model, tokenizer)
        made.set_precision(session.precision)
        return made

    candidates = {"lora": candidate(lora_dir, quantize=False),
                  "qlora before": candidate(qlora_dir, quantize=True, autocast_layers=False),
                  "qlora after": candidate(qlora_dir, quantize=True)}
    calls = {
        "score_choices, 100 items": lambda c, r: c.score_choices(prompts, choices),
        "TTFT, 5 one-token requests": lambda c, r: [
            c.generate([p], max_new_tokens=1) for p in prompts[5 * r:5 * r + 5]],
        "generate, 16 prompts x 16 tokens": lambda c, r: c.generate(prompts[:16], 16),
        "loglikelihood_rolling, 40 texts": lambda c, r: c.loglikelihood_rolling(texts),
    }
    for made in candidates.values():  # warm up (bitsandbytes repacks at the first call)
        made.score_choices(prompts[:8], choices[:8])
        made.generate(prompts[:1], max_new_tokens=2)
    seconds: dict[tuple[str, str], list[float]] = {}
    outputs: dict[tuple[str, str], object] = {}
    for r in range(rounds):
        for name, made in candidates.items():
            for call, run in calls.items():
                started = time.perf_counter()
                outputs[(name, call)] = run(made, r)
                seconds.setdefault((name, call), []).append(time.perf_counter() - started)
    print(f"precision {session.precision.name}, {torch.get_num_threads()} threads, "
          f"median of {rounds} rounds (s)")
    print("| call | " + " | ".join(candidates) + " | before / after | after / lora |")
    for call in calls:
        median = {n: statistics.median(seconds[(n, call)]) for n in candidates}
        print(f"| {call} | " + " | ".join(f"{median[n]:.2f}" for n in candidates)
              + f" | {median['qlora before'] / median['qlora after']:.2f}x"
              f" | {median['qlora after'] / median['lora']:.2f}x |")
    before = outputs[("qlora before", "score_choices, 100 items")]
    after = outputs[("qlora after", "score_choices, 100 items")]
    moved = [abs(x - y) for a, b in zip(before, after, strict=True)
             for x, y in zip(a, b, strict=True)]
    picks = [[max(range(len(row)), key=row.__getitem__) for row in s] for s in (before, after)]
    print(f"choice scores moved by at most {max(moved):.3f} (mean {statistics.mean(moved):.3f});"
          f" predictions changed: {sum(a != b for a, b in zip(*picks, strict=True))} of "
          f"{len(picks[0])}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:4]))
