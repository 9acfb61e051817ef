"""A Candidate backed by a causal language model and its chat template.

``score_choices`` follows lm-eval's multiple-choice protocol: the sum of the continuation's
token log-probabilities given the context, computed by
:func:`harness.models.scoring.score_requests` (the output layer in fp32, right-padded rows
behind the cache of the prompts' shared prefix: a score does not depend on the batch, the
prefix or the thread count). A prompt's choices that are one token long share one row: the
context's last position scores all of them.

``generate`` batches the same way for speed: the prompts' shared prefix (system prompt,
instruction, few-shot demonstrations) is encoded once and its key/value cache reused by every
row (prefix caching, as in vLLM's automatic prefix caching; Kwon et al., 2023), and the
remaining suffixes are left-padded, as ``generate()`` needs, sorted by length.

``loglikelihood_rolling`` scores raw text (no chat template) the way lm-eval's HFLM does for
perplexity: the text's tokens, after the BOS token (EOS if there is none) that predicts the
first of them, cut into disjoint windows of at most ``max_length`` predicted tokens (see
:func:`rolling_windows`).
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from transformers import GenerationConfig

from harness.core.approach import Candidate
from harness.models.hardware import (
    DEFAULT_BATCH_TOKENS,
    Precision,
    bytes_per_token,
    scoring_batch_tokens,
)
from harness.models.scoring import encode_prefix, length_batches, score_requests
from harness.tasks.base import Message

CONFIGURED_BATCH_TOKENS = int(os.environ.get("TUNEBENCH_MAX_BATCH_TOKENS", 0)) or None
"""``TUNEBENCH_MAX_BATCH_TOKENS``: attended tokens per scoring batch, if set."""
MAX_BATCH_TOKENS = CONFIGURED_BATCH_TOKENS or DEFAULT_BATCH_TOKENS
"""Upper bound on attended tokens (cached prefix + padded suffix) per row x rows in a batch
on the CPU; on a GPU it scales with free memory
(:func:`harness.models.hardware.scoring_batch_tokens`)."""
MAX_ROLLING_LENGTH = 2048
"""Upper bound on the window of ``loglikelihood_rolling`` (lm-eval HFLM's default maximum)."""


def model_window(model: Any) -> int:
    """The longest input raw-text scoring gives ``model``: its ``max_position_embeddings``,
    at most ``MAX_ROLLING_LENGTH``."""
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return min(limit or MAX_ROLLING_LENGTH, MAX_ROLLING_LENGTH)


def prefix_token_id(tokenizer: Any) -> int:
    """The token a raw text's first token is predicted from: BOS, else EOS (as lm-eval)."""
    bos = tokenizer.bos_token_id
    token = bos if bos is not None else tokenizer.eos_token_id
    if token is None:
        raise ValueError("the tokenizer has neither a BOS nor an EOS token to start raw text from")
    return token


def rolling_windows(
    tokens: Sequence[int], prefix: int, max_length: int
) -> list[tuple[list[int], list[int]]]:
    """``(input_ids, targets)`` pairs that score every token of ``tokens`` exactly once.

    The windows of lm-eval's ``get_rolling_token_windows(context_len=1)`` followed by
    ``make_disjoint_window``, as HFLM feeds them to the model: the targets are disjoint blocks
    of ``max_length`` tokens; each block is predicted from an input of at most ``max_length``
    tokens ending just before its last target, so a full block sees only the token before it
    as extra context, while the last, shorter block is given a full window of preceding
    tokens. ``prefix`` (BOS) predicts the first token. The last ``len(targets)`` positions of
    ``input_ids`` predict ``targets``.
    """
    if max_length < 1:
        raise ValueError(f"max_length must be at least 1, got {max_length}")
    sequence = [prefix, *tokens]
    windows = []
    for start in range(1, len(sequence), max_length):
        end = min(start + max_length, len(sequence))
        windows.append((sequence[max(0, end - 1 - max_length) : end - 1], sequence[start:end]))
    return windows


def chat_prompt_ids(tokenizer: Any, messages: Sequence[Message]) -> list[int]:
    """Token ids of ``messages`` in ``tokenizer``'s chat template, ending with the assistant
    turn's opening (the template adds any special tokens; none are added twice)."""
    text = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True,
                                         tokenize=False)
    return tokenizer(text, add_special_tokens=False).input_ids


def in_precision(method: Callable) -> Callable:
    """Run a candidate method under its precision's autocast (bf16 matmuls where chosen)."""

    @functools.wraps(method)
    def wrapper(self: Candidate, *args: Any, **kwargs: Any) -> Any:
        with self.autocast():
            return method(self, *args, **kwargs)

    return wrapper


class LMCandidate(Candidate):
    """Answers prompts with ``model`` through ``tokenizer``'s chat template.

    ``rewrite`` (optional) turns a task prompt into the conversation the model sees: few-shot
    examples or retrieved passages are added there, so every suite measures them the same way;
    a candidate given one has the :class:`~harness.core.capabilities.RewritesPrompts`
    capability.
    ``max_length`` bounds the windows of :meth:`loglikelihood_rolling` (default: the model's
    ``max_position_embeddings``, at most ``MAX_ROLLING_LENGTH``).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        rewrite: Callable[[Sequence[Message]], list[Message]] | None = None,
        *,
        share_prefix: bool = True,
        max_length: int | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.rewrite = rewrite or list
        if rewrite is not None:  # declares the RewritesPrompts capability
            self.rewrite_prompts = self._rewrite_prompts
        self.share_prefix = share_prefix
        """False for models that bring their own key/value prefix (PEFT prefix tuning)."""
        self.max_length = max_length
        """Longest window of raw-text scoring; ``None`` for the model's own limit."""
        self.draw_of: Callable[[Sequence[Message]], int] | None = None
        """Which of several random draws answers a prompt (few-shot demonstrations drawn
        several times, each item answered with one by a hash of its prompt); ``None`` for a
        candidate with one. The suites record it per item and bootstrap draws, then items."""

    def _rewrite_prompts(self, prompts: Sequence[Sequence[Message]]) -> list[list[Message]]:
        return [self.rewrite(prompt) for prompt in prompts]

    def scores_as(self, other: object) -> bool:
        """Whether this candidate's scores are ``other``'s by construction: both plain
        :class:`LMCandidate` objects on the same model and tokenizer objects, rewriting
        nothing, scoring the same way. Scores do not depend on the batch or the thread count
        (:mod:`harness.models.scoring`), so the forgetting suite reuses the base model's
        scores for such a candidate (zero-shot, and the weights of few-shot and RAG) instead
        of computing them again. A subclass (calibration, a delay) never qualifies."""
        return (type(self) is LMCandidate and type(other) is LMCandidate
                and self.model is other.model and self.tokenizer is other.tokenizer
                and self.rewrite is list and other.rewrite is list
                and self.share_prefix == other.share_prefix
                and self.max_length == other.max_length
                and self.precision == other.precision)

    def without_rewriting(self) -> LMCandidate:
        """The same weights answering prompts as they come: itself if it rewrites nothing,
        else a shallow copy without ``rewrite``. The forgetting suite scores this view to
        tell forgetting (a change of the weights) from prompt interference (demonstrations
        or passages in front of an unrelated question)."""
        if "rewrite_prompts" not in self.__dict__:
            return self
        plain = copy.copy(self)
        del plain.__dict__["rewrite_prompts"]
        plain.rewrite, plain.draw_of = list, None
        plain.info, plain.timings = dict(self.info), {}
        return plain

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def set_precision(self, precision: Precision) -> None:
        """Compute in ``precision``; in mixed precision the linear layers' weights are stored
        in the compute dtype from now on (:func:`~harness.models.hardware.store_linear_weights`)."""
        super().set_precision(precision)
        if self.model is not None:
            precision.store_frozen(self.model)

    @functools.cached_property
    def batch_tokens(self) -> int:
        """Attended tokens per scoring batch on this model's device."""
        dtype = self.precision.compute_dtype if self.precision else self.model.dtype
        per_token = bytes_per_token(self.model.config, dtype)
        return scoring_batch_tokens(self.device, bytes_per_token=per_token,
                                    configured=CONFIGURED_BATCH_TOKENS)

    @property
    def window_length(self) -> int:
        """The window of :meth:`loglikelihood_rolling`, in tokens."""
        return self.max_length if self.max_length is not None else model_window(self.model)

    def prompt_ids(self, messages: Sequence[Message]) -> list[int]:
        """Token ids of the conversation, ending with the assistant turn's opening."""
        return chat_prompt_ids(self.tokenizer, self.rewrite(messages))

    def _prefix_cache(self, sequences: Sequence[Sequence[int]], limit: int) -> tuple[int, Any]:
        """Encode the prefix shared by ``sequences`` (at most ``limit`` tokens) once."""
        if not self.share_prefix:
            return 0, None
        return encode_prefix(self.model, sequences, limit)

    def _inputs(self, suffixes: list[Sequence[int]], shared: int, cache: Any) -> dict[str, Any]:
        """Left-padded suffixes (as ``generate()`` wants them) behind the shared prefix, with
        a per-row copy of its cache; ``generate()`` derives the positions from the mask."""
        width = max(map(len, suffixes))
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(s)) + list(s) for s in suffixes])
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in suffixes])
        inputs: dict[str, Any] = {
            "input_ids": ids.to(self.device),
            "attention_mask": torch.cat(
                [torch.ones(len(suffixes), shared, dtype=mask.dtype), mask], dim=1
            ).to(self.device),
        }
        if cache is not None:
            rows = copy.deepcopy(cache)
            rows.batch_repeat_interleave(len(suffixes))
            inputs["past_key_values"] = rows
        return inputs

    @in_precision
    def score_choices(
        self, prompts: Sequence[Sequence[Message]], choices: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        requests: list[tuple[list[int], list[int]]] = []
        for prompt, options in zip(prompts, choices, strict=True):
            context = self.prompt_ids(prompt)
            for option in options:
                continuation = self.tokenizer(option, add_special_tokens=False).input_ids
                if not continuation:
                    raise ValueError(f"choice {option!r} tokenizes to nothing")
                requests.append(([*context, *continuation[:-1]], continuation))
        results = iter(score_requests(self.model, requests, self.tokenizer.pad_token_id,
                                      self.batch_tokens, share_prefix=self.share_prefix))
        return [[next(results)[0] for _ in options] for options in choices]

    @in_precision
    @torch.inference_mode()
    def generate(
        self, prompts: Sequence[Sequence[Message]], max_new_tokens: int = 32, *,
        ignore_eos: bool = False,
    ) -> list[str]:
        """Greedy replies; ``ignore_eos``: exactly ``max_new_tokens`` tokens each (the
        end-of-sequence token is suppressed until then: ``min_new_tokens``)."""
        contexts = [self.prompt_ids(p) for p in prompts]
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            min_new_tokens=max_new_tokens if ignore_eos else None,
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
        )
        shared, cache = self._prefix_cache(contexts, min(map(len, contexts)) - 1)
        lengths = [len(c) - shared + max_new_tokens for c in contexts]
        outputs: list[str] = [""] * len(prompts)
        for batch in length_batches(lengths, shared, self.batch_tokens):
            inputs = self._inputs([contexts[b][shared:] for b in batch], shared, cache)
            if cache is not None:  # generate() takes the whole sequence and skips cached tokens
                prefix = torch.tensor([contexts[batch[0]][:shared]] * len(batch))
                inputs["input_ids"] = torch.cat([prefix.to(self.device), inputs["input_ids"]], 1)
            width = inputs["input_ids"].shape[1]
            generated = self.model.generate(**inputs, generation_config=config)
            for row, index in enumerate(batch):
                outputs[index] = self.tokenizer.decode(
                    generated[row, width:], skip_special_tokens=True
                ).strip()
        return outputs

    @in_precision
    def loglikelihood_rolling(self, texts: Sequence[str]) -> list[tuple[float, int]]:
        """Summed log-probability of each raw text and its number of tokens.

        Tokenized without special tokens and predicted from :func:`prefix_token_id` in the
        disjoint windows of :func:`rolling_windows` (lm-eval HFLM's perplexity protocol), all
        texts' windows batched together. ``rewrite`` does not apply: raw text is no prompt.
        """
        prefix, length = prefix_token_id(self.tokenizer), self.window_length
        owners: list[int] = []
        windows: list[tuple[list[int], list[int]]] = []
        counts: list[int] = []
        for index, text in enumerate(texts):
            tokens = self.tokenizer(text, add_special_tokens=False).input_ids
            counts.append(len(tokens))
            for window in rolling_windows(tokens, prefix, length):
                owners.append(index)
                windows.append(window)
        totals = [0.0] * len(texts)
        scores = score_requests(self.model, windows, self.tokenizer.pad_token_id,
                                self.batch_tokens, share_prefix=self.share_prefix)
        for index, (logprob, _) in zip(owners, scores, strict=True):
            totals[index] += logprob
        return list(zip(totals, counts, strict=True))
