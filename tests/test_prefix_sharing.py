"""Shared-prefix training (harness.models.prefix_sharing): same loss and gradients, less work."""

import pytest
import torch

from harness.models.prefix_sharing import (
    IGNORE_INDEX,
    MIN_SHARED_TOKENS,
    can_share_prefix,
    shared_prefix_length,
    suffix_inputs,
)

PREFIX = list(range(3, 15))  # 12 tokens every row starts with


def batch():
    """Three right-padded rows: the shared prefix, own prompt tokens, then a scored reply."""
    rows = [[*PREFIX, 20, 21, 22, 30, 31], [*PREFIX, 23, 30, 32], [*PREFIX, 24, 25, 33, 34, 35]]
    reply = [2, 2, 3]  # scored tokens at the end of each row
    width = max(map(len, rows))
    ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    labels = torch.full_like(ids, IGNORE_INDEX)
    for i, (r, n) in enumerate(zip(rows, reply, strict=True)):
        labels[i, len(r) - n : len(r)] = ids[i, len(r) - n : len(r)]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def test_the_prefix_stops_before_the_first_scored_token():
    inputs = batch()
    assert shared_prefix_length(**inputs) == len(PREFIX)
    labels = inputs["labels"].clone()
    labels[0, 10] = 5  # a scored token inside the common part: it must be predicted in the suffix
    assert shared_prefix_length(inputs["input_ids"], inputs["attention_mask"], labels) == 9
    labels[0, 5] = 5
    assert shared_prefix_length(inputs["input_ids"], inputs["attention_mask"], labels) == 0
    one_row = {k: v[:1] for k, v in inputs.items()}
    assert shared_prefix_length(**one_row) == 0
    assert len(PREFIX) >= MIN_SHARED_TOKENS


@pytest.mark.parametrize("dropout", [False, True])
def test_same_loss_and_gradients_as_the_plain_forward_pass(tiny_model_dir, dropout):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    model.train(dropout)  # with dropout off both paths compute exactly the same function
    inputs = batch()

    def loss_and_grads(forward_inputs):
        model.zero_grad()
        loss = model(**forward_inputs).loss
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}

    plain_loss, plain_grads = loss_and_grads(inputs)
    shared = suffix_inputs(model, inputs, shared_prefix_length(**inputs))
    assert shared["input_ids"].shape[1] == inputs["input_ids"].shape[1] - len(PREFIX)
    shared_loss, shared_grads = loss_and_grads(shared)
    if dropout:  # the tiny model has no dropout layers: nothing differs even in train mode
        assert model.training
    assert torch.allclose(plain_loss, shared_loss, atol=1e-5)
    for name, grad in plain_grads.items():
        assert torch.allclose(grad, shared_grads[name], atol=1e-5), name


def test_prompt_learning_models_keep_the_plain_path(tiny_model_dir):
    from peft import LoraConfig, PrefixTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    def load():
        return AutoModelForCausalLM.from_pretrained(tiny_model_dir)

    lora = get_peft_model(load(), LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    prefix = get_peft_model(load(), PrefixTuningConfig(num_virtual_tokens=2,
                                                       task_type="CAUSAL_LM"))
    assert can_share_prefix(load()) and can_share_prefix(lora)
    assert not can_share_prefix(prefix)


def test_scoring_only_labelled_positions_keeps_loss_and_gradients(tiny_model_dir,
                                                                   monkeypatch):
    """trl's fused output layer over the scored positions only (what it does on Triton
    devices) gives the loss, gradients and metrics of its pass over every position, and
    projects only those positions (the rows its chunked log-probability function gets)."""
    from transformers import AutoModelForCausalLM
    from trl.trainer import utils as trl_utils

    from harness.models.prefix_sharing import scored_positions_only

    projected = []
    chunked = trl_utils._ChunkedLogProbFunction

    class CountingRows:
        @staticmethod
        def apply(hidden, *rest):
            projected.append(hidden.shape[0])
            return chunked.apply(hidden, *rest)

    monkeypatch.setattr(trl_utils, "_ChunkedLogProbFunction", CountingRows)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    trl_utils.add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    inputs = batch()
    labels = inputs["labels"]

    def run():
        model.zero_grad()
        out = model(**inputs, fused_lm_head=True)
        out.loss.backward()
        return out, {n: p.grad.clone() for n, p in model.named_parameters()}

    everywhere, everywhere_grads = run()
    with scored_positions_only():
        scored, scored_grads = run()
    assert projected == [labels[:, 1:].numel(), int((labels[:, 1:] != -100).sum())]
    assert projected[1] < projected[0]
    torch.testing.assert_close(scored.loss, everywhere.loss)
    torch.testing.assert_close(scored.entropy, everywhere.entropy)
    assert torch.equal(scored.is_top1, everywhere.is_top1)
    for name, grad in everywhere_grads.items():
        torch.testing.assert_close(scored_grads[name], grad, msg=name)
