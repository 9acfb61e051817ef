"""Shared-prefix training: the prompt prefix every row of a batch starts with is encoded once.

Supervised examples of one task usually begin with the same tokens: the chat template, the
system prompt and the instruction (48 of the 76 tokens of an average ``sentiment`` training
example with the embedded model's template). A plain forward pass computes that prefix once
per row. Here it is computed once per batch; its key/value cache is repeated across the rows
(autograd sums the rows' gradients back into the one computation) and only each row's own
suffix goes through the model. It is the training-time counterpart of the prefix caching
the candidates use for scoring (``harness.models.lm_candidate``; vLLM's automatic prefix caching,
Kwon et al., 2023).

The loss (the same tokens, the same normalisation) and the gradients equal those of the
plain forward pass up to floating-point rounding (tests/test_prefix_sharing.py). One thing
differs: dropout inside the shared prefix (e.g. LoRA's) draws one mask for all rows of the
batch instead of one per row.

The prefix ends before the first position whose next token is scored, so every scored
token is predicted from a suffix position. Models that bring their own key/value prefix
(PEFT prompt learning) and padding-free batches are trained the plain way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

MIN_SHARED_TOKENS = 8
"""Shorter shared prefixes are not worth a separate forward pass."""
IGNORE_INDEX = -100


def shared_prefix_length(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor
) -> int:
    """How many leading tokens every row of the batch shares, cut before the first position
    whose next token is scored; 0 when fewer than ``MIN_SHARED_TOKENS`` or one row."""
    if input_ids.shape[0] < 2:
        return 0
    same = (input_ids == input_ids[:1]).all(0) & attention_mask.bool().all(0)
    length = int(same.long().cumprod(0).sum())
    scored = labels != IGNORE_INDEX
    if scored.any():
        first_scored = torch.where(scored.any(1), scored.float().argmax(1), scored.shape[1])
        length = min(length, int(first_scored.min()) - 1)
    length = min(length, input_ids.shape[1] - 1)  # leave every row at least one token
    return length if length >= MIN_SHARED_TOKENS else 0


def suffix_inputs(model: Any, inputs: dict[str, Any], length: int) -> dict[str, Any]:
    """``inputs`` with the first ``length`` tokens replaced by their key/value cache.

    The cache is computed once (with gradients) and repeated across the rows; per-token
    tensors (input ids, labels, other masks) keep their suffix, while the attention mask
    keeps its full width, so positions and masking are those of the whole sequence.
    """
    from transformers import DynamicCache

    ids = inputs["input_ids"]
    cache = DynamicCache(config=model.config)
    model(input_ids=ids[:1, :length], past_key_values=cache, use_cache=True, logits_to_keep=1)
    cache.batch_repeat_interleave(ids.shape[0])
    out: dict[str, Any] = {}
    for key, value in inputs.items():  # per-token tensors (ids, labels, masks) lose the prefix
        per_token = (isinstance(value, torch.Tensor) and value.shape == ids.shape
                     and key != "attention_mask")
        out[key] = value[:, length:] if per_token else value
    out["past_key_values"] = cache
    return out


@contextlib.contextmanager
def scored_positions_only() -> Iterator[None]:
    """Make trl's fused LM head (``add_fused_lm_head``, which ``SFTTrainer.compute_loss``
    uses) project only the positions whose label is not -100, on every device.

    trl does that on Triton devices only; elsewhere it runs the 49k-wide output layer, forward
    and backward (the backward's products in fp32), over every position of the batch and
    zeroes the unscored ones afterwards: a completion-only batch of short replies scores a few
    positions per row. The per-position log-probabilities, entropies and top-1 flags, hence
    the loss and its gradients, are those of the full pass. trl reads ``_use_triton`` from
    its ``trainer.utils`` module's globals for that choice only (its kernels read their own
    copy and keep folding tiles in torch); a trl without it trains the slower way.
    """
    try:
        from trl.trainer import utils as trl_utils
    except ImportError:
        yield
        return
    original = getattr(trl_utils, "_use_triton", None)
    if original is None:
        yield
        return
    trl_utils._use_triton = lambda device: True
    try:
        yield
    finally:
        trl_utils._use_triton = original


def can_share_prefix(model: Any) -> bool:
    """False for models whose attention already carries a learned prefix (PEFT prompt
    learning: prefix, prompt and P-tuning)."""
    configs = getattr(model, "peft_config", None) or {}
    return not any(getattr(c, "is_prompt_learning", False) for c in configs.values())


def with_prefix_sharing(trainer_class: type) -> type:
    """A subclass of a transformers/trl trainer whose ``compute_loss`` shares prefixes (and
    projects the output layer only at scored positions: :func:`scored_positions_only`)."""

    class SharedPrefixTrainer(trainer_class):
        share_prefix = True
        score_only_labelled = True
        """Project the output layer only at scored positions (:func:`scored_positions_only`)."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if self.share_prefix and "labels" in inputs and "position_ids" not in inputs:
                length = shared_prefix_length(
                    inputs["input_ids"], inputs["attention_mask"], inputs["labels"])
                if length:
                    inputs = suffix_inputs(model, inputs, length)
            scope = (scored_positions_only() if self.score_only_labelled
                     else contextlib.nullcontext())
            with scope:
                return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                            num_items_in_batch=num_items_in_batch)

    SharedPrefixTrainer.__name__ = f"SharedPrefix{trainer_class.__name__}"
    return SharedPrefixTrainer
