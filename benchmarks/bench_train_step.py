"""One training step on a real batch (the first 8 `sentiment` train examples), with the
speed-ups of the harness added one at a time.

    python benchmarks/bench_train_step.py [--steps 6]

Steps, cumulative: fp32 with torch's fused attention (sdpa) and the per-tensor AdamW loop;
bf16 autocast over fp32 weights (what ``TrainingArguments(bf16=True)`` does); shared-prefix
training (harness/models/prefix_sharing.py); for PEFT, the frozen base's linear weights stored in
bf16 (harness/hardware.store_linear_weights); eager attention (harness/basemodel); fused
AdamW. Mean of ``--steps`` steps after one warm-up step; loss on the last 3 tokens.
"""

import argparse
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoTokenizer

from harness.models.hardware import store_linear_weights
from harness.models.loading import EMBEDDED_MODEL, load_model, resolve_model
from harness.models.prefix_sharing import shared_prefix_length, suffix_inputs
from harness.tasks.sentiment.task import SentimentTask

SETUPS = [
    ("fp32", {}),
    ("bf16 autocast", {"autocast": True}),
    ("+ shared prefix", {"autocast": True, "share": True}),
    ("+ frozen base in bf16", {"autocast": True, "share": True, "frozen_bf16": True}),
    ("+ eager attention", {"autocast": True, "share": True, "frozen_bf16": True,
                           "attention": "eager"}),
    ("+ fused AdamW", {"autocast": True, "share": True, "frozen_bf16": True,
                       "attention": "eager", "fused": True}),
]


def batch() -> dict[str, torch.Tensor]:
    tok = AutoTokenizer.from_pretrained(resolve_model(EMBEDDED_MODEL).source)
    examples = SentimentTask().load(0).train[:8]
    texts = [tok.apply_chat_template([*e.messages, {"role": "assistant", "content": e.answer}],
                                     tokenize=False) for e in examples]
    encoded = [tok(t, add_special_tokens=False).input_ids for t in texts]
    width = max(map(len, encoded))
    ids = torch.tensor([e + [tok.pad_token_id] * (width - len(e)) for e in encoded])
    mask = torch.tensor([[1] * len(e) + [0] * (width - len(e)) for e in encoded])
    labels = ids.clone()
    labels[mask == 0] = -100
    for i, e in enumerate(encoded):
        labels[i, : len(e) - 3] = -100
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def seconds_per_step(kind: str, inputs: dict[str, torch.Tensor], steps: int, *,
                     autocast: bool = False, share: bool = False, frozen_bf16: bool = False,
                     attention: str = "sdpa", fused: bool = False) -> float:
    model, _ = load_model(resolve_model(EMBEDDED_MODEL), torch.device("cpu"), torch.float32,
                          attn_implementation=attention)
    if kind == "lora":
        if frozen_bf16:
            store_linear_weights(model, torch.bfloat16)
        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, task_type="CAUSAL_LM",
                                                 target_modules=["q_proj", "v_proj"]))
    model.train()
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=1e-5, fused=fused, foreach=None if fused else True)
    prefix = shared_prefix_length(inputs["input_ids"], inputs["attention_mask"],
                                  inputs["labels"])
    times = []
    for step in range(steps + 1):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = model(**(suffix_inputs(model, inputs, prefix) if share else inputs)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step:
            times.append(time.perf_counter() - started)
    return sum(times) / len(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    inputs = batch()
    print("| step | lora (r=16, q/v) | full-ft |\n|---|---|---|")
    for label, setup in SETUPS:
        cells = []
        for kind in ("lora", "full"):
            if kind == "full" and label == "+ frozen base in bf16":
                cells.append("-")  # nothing is frozen in full fine-tuning
                continue
            cells.append(f"{seconds_per_step(kind, inputs, args.steps, **setup):.2f} s")
        print(f"| {label} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
