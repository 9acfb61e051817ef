"""One training step on a real batch (the first 8 `sentiment` train examples), set up four ways.

    python benchmarks/bench_train_step.py

fp32; bf16 autocast over fp32 weights (what ``TrainingArguments(bf16=True)`` does); the same
with shared-prefix training (harness/prefix_sharing.py); and, for LoRA, the frozen base
stored in bf16. Mean of 4 steps after one warm-up step; AdamW; loss on the last 3 tokens.
"""

import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoTokenizer

from harness.basemodel import EMBEDDED_MODEL, load_model, resolve_model
from harness.prefix_sharing import shared_prefix_length, suffix_inputs
from harness.tasks.sentiment import SentimentTask

spec = resolve_model(EMBEDDED_MODEL)
tok = AutoTokenizer.from_pretrained(spec.source)
ex = SentimentTask().load(0).train[:8]
texts = [
    tok.apply_chat_template(
        [*list(e.messages), {"role": "assistant", "content": e.answer}], tokenize=False
    )
    for e in ex
]
enc = [tok(t, add_special_tokens=False).input_ids for t in texts]
W = max(map(len, enc))
ids = torch.tensor([e + [tok.pad_token_id] * (W - len(e)) for e in enc])
mask = torch.tensor([[1] * len(e) + [0] * (W - len(e)) for e in enc])
labels = ids.clone()
labels[mask == 0] = -100
for i, e in enumerate(enc):
    labels[i, : len(e) - 3] = -100
inputs = {"input_ids": ids, "attention_mask": mask, "labels": labels}


def run(kind, weights, autocast, share, steps=4):
    model, _ = load_model(spec, torch.device("cpu"), weights)
    if kind == "lora":
        model = get_peft_model(
            model,
            LoraConfig(
                r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"
            ),
        )
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    times = []
    for s in range(steps + 1):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            x = inputs
            if share:
                x = suffix_inputs(model, inputs, shared_prefix_length(ids, mask, labels))
            loss = model(**x).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        if s:
            times.append(time.perf_counter() - t)
    print(
        f"{kind:5s} weights={weights!s:15s} autocast={autocast!s:5s} share={share!s:5s} "
        f"{sum(times) / len(times):.2f} s/step",
        flush=True,
    )


for kind in ("lora", "full"):
    run(kind, torch.float32, False, False)
    run(kind, torch.float32, True, False)
    run(kind, torch.float32, True, True)
    if kind == "lora":
        run(kind, torch.bfloat16, True, True)
