"""LoRA training throughput: the harness vs a plain hand-written trl script, same run.

    python benchmarks/bench_lora_throughput.py [--steps 12] [--examples 256] [--precision bf16]

Both train the embedded model with the same LoRA config (r=16, alpha=32, q_proj/v_proj),
data, batch size, number of steps and precision (``bf16``: ``TrainingArguments(bf16=True)``,
autocast with fp32 master weights, in both); the harness ratio target is >= 1.0. Also
reports useful (non-padding) tokens/s, padding waste with and without length grouping, the
share of tokens shared-prefix training computes, and the share of the machine's matmul peak
in that precision the training reaches. LoRA on a frozen base costs about 4 x non-embedding
parameters FLOPs per token (forward, plus backward through activations); "computed" FLOP/s
count the tokens actually run through the model (a shared prefix once per batch), "useful"
FLOP/s every token of every row, as a plain forward pass would compute them.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from harness.models.hardware import DTYPES, Precision
from harness.models.loading import EMBEDDED_MODEL, load_model, resolve_model
from harness.models.prefix_sharing import shared_prefix_length
from harness.tasks.sentiment.task import SentimentTask
from harness.train.sft import TrainingConfig, sft_records, train_sft

LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": ["q_proj", "v_proj"]}


def matmul_peak_gflops(dtype: torch.dtype, size: int = 2048, repeats: int = 10,
                       rounds: int = 5) -> float:
    """The best of ``rounds`` timings of ``repeats`` square products: a peak is the fastest
    the machine was seen to go (one round after a warm-up read 401 GFLOP/s where the best of
    five reads about 700 on the same machine)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 * repeats / best / 1e9


def lora_model(precision: str, *, harness: bool):
    """The LoRA model each side trains: the plain script loads the base as a user would
    (fp32, transformers' default attention); the harness as ``session.load_base`` does
    (frozen linear weights in the compute dtype, its CPU attention choice)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    spec, cpu = resolve_model(EMBEDDED_MODEL), torch.device("cpu")
    if harness:
        model, tokenizer = load_model(spec, cpu, torch.float32)
        Precision(precision, cpu).store_frozen(model)
    else:
        model, tokenizer = load_model(spec, cpu, torch.float32, attn_implementation="sdpa")
    return get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **LORA)), tokenizer


def padding(trainer) -> tuple[int, int, int]:
    """(useful, padded, computed) tokens over one epoch of the trainer's own batches;
    ``computed`` counts a shared prefix once per batch when the trainer shares prefixes."""
    useful = padded = computed = 0
    sharing = getattr(trainer, "share_prefix", False)
    for batch in trainer.get_train_dataloader():
        tokens = int(batch["attention_mask"].sum())
        useful += tokens
        padded += batch["input_ids"].numel()
        shared = shared_prefix_length(batch["input_ids"], batch["attention_mask"],
                                      batch["labels"]) if sharing else 0
        computed += tokens - shared * (batch["input_ids"].shape[0] - 1)
    return useful, padded, computed


def plain_trl(train, steps: int, batch: int, precision: str) -> tuple[float, int, Any]:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    model, tokenizer = lora_model(precision, harness=False)
    args = SFTConfig(
        output_dir="/tmp/plain-trl", per_device_train_batch_size=batch, learning_rate=2e-4,
        max_steps=steps, use_cpu=True, bf16=precision == "bf16", gradient_checkpointing=False,
        report_to=[],
        save_strategy="no", max_length=256, include_num_input_tokens_seen="non_padding",
        disable_tqdm=True,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(
        sft_records(train)), processing_class=tokenizer)
    started = time.perf_counter()
    trainer.train()
    return time.perf_counter() - started, int(trainer.state.num_input_tokens_seen), trainer


def harness_lora(train, steps: int, batch: int, precision: str) -> tuple[float, int, Any]:
    model, tokenizer = lora_model(precision, harness=True)
    seen = {}
    result = train_sft(
        model, tokenizer, train, [], TrainingConfig(max_steps=steps, batch_size=batch),
        seed=0, output_dir="/tmp/harness-lora", precision=Precision(precision, torch.device("cpu")),
        curve_sink=lambda *point: None, inspect_trainer=lambda t: seen.setdefault("t", t),
    )
    return result.train_seconds, result.train_tokens, seen["t"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    args = parser.parse_args()
    train = SentimentTask().load(0).train[: args.examples]
    peak = matmul_peak_gflops(DTYPES[args.precision])
    plain_seconds, plain_tokens, plain_trainer = plain_trl(train, args.steps, args.batch,
                                                           args.precision)
    ours_seconds, ours_tokens, ours_trainer = harness_lora(train, args.steps, args.batch,
                                                           args.precision)
    plain_rate, ours_rate = plain_tokens / plain_seconds, ours_tokens / ours_seconds
    non_embedding = sum(p.numel() for n, p in ours_trainer.model.named_parameters()
                        if "embed" not in n and "lm_head" not in n)  # lm_head: untied copy
    print(f"{args.precision} matmul peak (2048 x 2048): {peak:.0f} GFLOP/s")
    print(f"plain trl : {plain_seconds:6.1f} s, {plain_tokens} useful tokens, "
          f"{plain_rate:6.1f} tokens/s")
    print(f"harness   : {ours_seconds:6.1f} s, {ours_tokens} useful tokens, "
          f"{ours_rate:6.1f} tokens/s")
    print(f"ratio harness / plain (useful tokens/s): {ours_rate / plain_rate:.3f}")
    useful_flops = 4 * non_embedding * ours_rate / 1e9
    for label, trainer in (("random batches (plain trl)", plain_trainer),
                           ("length-grouped (harness)", ours_trainer)):
        useful, padded, computed = padding(trainer)
        print(f"padding, {label}: {1 - useful / padded:.1%} of batch tokens are padding; "
              f"{computed / useful:.1%} of useful tokens computed")
    computed_flops = useful_flops * computed / useful
    print(f"harness useful FLOP/s: {useful_flops:.0f} GFLOP/s = {useful_flops / peak:.0%} of "
          f"the matmul peak; computed: {computed_flops:.0f} GFLOP/s = "
          f"{computed_flops / peak:.0%}")


if __name__ == "__main__":
    main()
