"""A tiny model that knows something: the base the forgetting control needs.

A randomly initialised tiny model scores the general probes at chance, so no adaptation can
make it forget them. :func:`make_knowing_model` first teaches it, in seconds, the smoke
budget's probes (each question's answer as the assistant's reply, in the chat format the
forgetting suite scores, followed by the end-of-turn token) and the general text of the
perplexity probe, then saves it as a model folder for ``--model``. Having learnt to end its
replies, it answers other prompts in a few tokens too, so its own latency is small next to
a known delay (the latency control).
"""

from __future__ import annotations

from pathlib import Path

import torch

from harness.core.plugins import tasks
from harness.models.lm_candidate import LMCandidate, prefix_token_id
from harness.tasks.base import Example
from harness.tasks.general.task import general_text
from harness.testing import make_tiny_model

SMOKE_PROBES = 24
"""The general probes the smoke budget scores (``suites/test_forgetting.py``)."""
SMOKE_TEXTS = 3
"""The paragraphs of general text the smoke budget scores."""


def probes(seed: int = 0) -> list[Example]:
    """The smoke budget's general probes for ``seed``."""
    return tasks().get("general")().load(seed).eval[:SMOKE_PROBES]


def _rows(tokenizer, seed: int) -> list[tuple[list[int], int]]:
    """``(token ids, first position trained on)``: probe replies and an end-of-turn token
    after their chat prompt (as :class:`LMCandidate` scores a choice), general text after the
    BOS token."""
    prompt = LMCandidate(None, tokenizer).prompt_ids
    rows = [(prompt(e.messages) + tokenizer(e.answer + tokenizer.eos_token,
                                             add_special_tokens=False).input_ids,
             len(prompt(e.messages))) for e in probes(seed)]
    start = prefix_token_id(tokenizer)
    rows += [([start, *tokenizer(text, add_special_tokens=False).input_ids], 1)
             for text in general_text()[:SMOKE_TEXTS]]
    return rows


def _batches(rows, pad: int, size: int = 8):
    """Length-sorted batches of ``(input_ids, attention_mask, labels)``."""
    rows = sorted(rows, key=lambda row: len(row[0]))
    for start in range(0, len(rows), size):
        part = rows[start : start + size]
        width = max(len(ids) for ids, _ in part)
        ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in part])
        mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in part])
        labels = ids.masked_fill(mask == 0, -100)
        for row, (_, first) in enumerate(part):
            labels[row, :first] = -100
        yield ids, mask, labels


def make_knowing_model(folder: Path, *, seed: int = 0, steps: int = 60,
                       learning_rate: float = 1e-2) -> Path:
    """Write a tiny model trained on the smoke probes and general text to ``folder``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    make_tiny_model(folder, seed=seed)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="sdpa")
    torch.manual_seed(seed)
    batches = list(_batches(_rows(tokenizer, seed), tokenizer.pad_token_id))
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        optimiser.zero_grad()
        for ids, mask, labels in batches:
            model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        optimiser.step()
    model.eval()
    model.save_pretrained(folder)
    return folder
