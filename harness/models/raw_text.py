"""Scoring plain text without a chat template, the way lm-eval's HFLM scores a base model.

Published forgetting results (Biderman et al., 2024, "LoRA Learns Less and Forgets Less") and
lm-eval's leaderboards score ``context + continuation`` as raw text: no chat template, no
system prompt, no prompt rewriting. :func:`raw_loglikelihood` is that protocol for any
candidate exposing ``model`` and ``tokenizer``; the lm-eval bridge's ``raw`` mode and the
forgetting suite's raw-mode probes both use it, so the two agree by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from harness.models.lm_candidate import MAX_BATCH_TOKENS, model_window, prefix_token_id
from harness.models.scoring import score_requests

CHUNK = 256
"""Requests scored per call of :func:`~harness.models.scoring.score_requests` (progress is
reported per chunk)."""


def has_language_model(candidate: Any) -> bool:
    """Whether ``candidate`` exposes the ``model`` and ``tokenizer`` raw scoring needs."""
    return (getattr(candidate, "model", None) is not None
            and getattr(candidate, "tokenizer", None) is not None)


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """HFLM's encoding of one request: the whole text tokenized with the tokenizer's defaults
    and split where the context's tokens end (trailing spaces of the context move to the
    continuation); an empty context is replaced by the BOS/EOS token."""
    if context == "":
        whole = tokenizer(continuation, add_special_tokens=False).input_ids
        prefix = prefix_token_id(tokenizer)
        return ([prefix], whole) if whole and whole[0] != prefix else (whole[:1], whole[1:])
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer(context + continuation).input_ids
    context_ids = tokenizer(context).input_ids
    return context_ids, whole[len(context_ids) :]


def raw_loglikelihood(
    candidate: Any, pairs: Sequence[tuple[str, str]],
    on_chunk: Callable[[int], None] | None = None,
) -> list[tuple[float, bool]]:
    """``(log P(continuation | context), is_greedy)`` for each ``(context, continuation)``
    pair as plain text through ``candidate.model`` (see :func:`encode_pair`); inputs longer
    than the model's window are cut from the left. ``on_chunk(n)`` is told as requests are
    done. Raises ``NotImplementedError`` for a candidate without a language model."""
    if not has_language_model(candidate):
        raise NotImplementedError(
            f"{type(candidate).__name__} has no language model (model and tokenizer) to "
            "score raw text")
    tokenizer, model = candidate.tokenizer, candidate.model
    window = getattr(candidate, "window_length", None) or model_window(model)
    requests: list[tuple[list[int], list[int]]] = []
    for context, continuation in pairs:
        context_ids, continuation_ids = encode_pair(tokenizer, context, continuation)
        if len(continuation_ids) > window:
            raise ValueError(f"a continuation of {len(continuation_ids)} tokens does not fit "
                             f"the model's {window}-token window")
        requests.append(((context_ids + continuation_ids)[-(window + 1) :][:-1],
                         continuation_ids))
    results: list[tuple[float, bool]] = [(0.0, True)] * len(pairs)
    scorable = [i for i, (_, targets) in enumerate(requests) if targets]
    budget = getattr(candidate, "batch_tokens", MAX_BATCH_TOKENS)  # as the candidate scores
    for start in range(0, len(scorable), CHUNK):
        chunk = scorable[start : start + CHUNK]
        with candidate.autocast():
            scores = score_requests(model, [requests[i] for i in chunk],
                                    tokenizer.pad_token_id, budget,
                                    share_prefix=getattr(candidate, "share_prefix", True))
        for index, score in zip(chunk, scores, strict=True):
            results[index] = score
        if on_chunk is not None:
            on_chunk(len(chunk))
    return results
