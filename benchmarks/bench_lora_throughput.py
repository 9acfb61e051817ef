"""LoRA training throughput: the harness vs a plain hand-written trl script, same run.

    python benchmarks/bench_lora_throughput.py [--steps 12] [--examples 256]

Both train the embedded model with the same LoRA config (r=16, alpha=32, q_proj/v_proj),
data, batch size and number of steps; the harness ratio target is >= 0.95. Also reports
useful (non-padding) tokens/s, padding waste with and without length grouping, and the share
of the machine's fp32 matmul peak the training reaches (LoRA on a frozen base costs about
4 x non-embedding parameters FLOPs per token: forward, plus backward through activations).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from harness.basemodel import EMBEDDED_MODEL, load_model, resolve_model
from harness.tasks.sentiment import SentimentTask
from harness.training import TrainingConfig, sft_records, train_sft

LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": ["q_proj", "v_proj"]}


def matmul_peak_gflops(size: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def lora_model():
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model, tokenizer = load_model(resolve_model(EMBEDDED_MODEL), torch.device("cpu"),
                                  torch.float32)
    return get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **LORA)), tokenizer


def padding(trainer) -> tuple[int, int]:
    """(useful, padded) tokens over one epoch of the trainer's own batches."""
    useful = padded = 0
    for batch in trainer.get_train_dataloader():
        useful += int(batch["attention_mask"].sum())
        padded += batch["input_ids"].numel()
    return useful, padded


def plain_trl(train, steps: int, batch: int) -> tuple[float, int, Any]:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    model, tokenizer = lora_model()
    args = SFTConfig(
        output_dir="/tmp/plain-trl", per_device_train_batch_size=batch, learning_rate=2e-4,
        max_steps=steps, use_cpu=True, bf16=False, gradient_checkpointing=False, report_to=[],
        save_strategy="no", max_length=256, include_num_input_tokens_seen="non_padding",
        disable_tqdm=True,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(
        sft_records(train)), processing_class=tokenizer)
    started = time.perf_counter()
    trainer.train()
    return time.perf_counter() - started, int(trainer.state.num_input_tokens_seen), trainer


def harness_lora(train, steps: int, batch: int) -> tuple[float, int, Any]:
    model, tokenizer = lora_model()
    seen = {}
    result = train_sft(
        model, tokenizer, train, [], TrainingConfig(max_steps=steps, batch_size=batch),
        seed=0, output_dir="/tmp/harness-lora", device=torch.device("cpu"),
        curve_sink=lambda *point: None, inspect_trainer=lambda t: seen.setdefault("t", t),
    )
    return result.train_seconds, result.train_tokens, seen["t"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    train = SentimentTask().load(0).train[: args.examples]
    peak = matmul_peak_gflops()
    plain_seconds, plain_tokens, plain_trainer = plain_trl(train, args.steps, args.batch)
    ours_seconds, ours_tokens, ours_trainer = harness_lora(train, args.steps, args.batch)
    plain_rate, ours_rate = plain_tokens / plain_seconds, ours_tokens / ours_seconds
    non_embedding = sum(p.numel() for n, p in ours_trainer.model.named_parameters()
                        if "embed" not in n)
    print(f"fp32 matmul peak: {peak:.0f} GFLOP/s")
    print(f"plain trl : {plain_seconds:6.1f} s, {plain_tokens} useful tokens, "
          f"{plain_rate:6.1f} tokens/s")
    print(f"harness   : {ours_seconds:6.1f} s, {ours_tokens} useful tokens, "
          f"{ours_rate:6.1f} tokens/s")
    print(f"ratio harness / plain (useful tokens/s): {ours_rate / plain_rate:.3f}")
    print(f"harness model FLOP/s: {4 * non_embedding * ours_rate / 1e9:.0f} GFLOP/s = "
          f"{4 * non_embedding * ours_rate / 1e9 / peak:.0%} of the matmul peak")
    for label, trainer in (("random batches (plain trl)", plain_trainer),
                           ("length-grouped (harness)", ours_trainer)):
        useful, padded = padding(trainer)
        print(f"padding, {label}: {1 - useful / padded:.1%} of batch tokens are padding")


if __name__ == "__main__":
    main()
