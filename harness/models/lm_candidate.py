"""A Candidate backed by a causal language model and its chat template.

``score_choices`` follows lm-eval's multiple-choice protocol: the sum of the continuation's
token log-probabilities given the context. Both it and ``generate`` are batched so that CPU
time goes to useful tokens only:

- every prompt's context is encoded once, however many choices follow it: the context's
  last position scores every choice's first token (one-token labels cost nothing more),
  and longer choices continue from the context's cached keys and values;
- the prompts of a call usually share a long prefix (system prompt, instruction, few-shot
  demonstrations): it is encoded once and its key/value cache reused by every row
  (prefix caching, as in vLLM's automatic prefix caching; Kwon et al., 2023);
- the remaining suffixes are left-padded, with position ids taken from the attention mask so
  padding never changes a score, sorted by length, and only the needed logits are computed
  (``logits_to_keep``).

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
from transformers import DynamicCache, GenerationConfig

from harness.core.approach import Candidate
from harness.models.hardware import (
    DEFAULT_BATCH_TOKENS,
    Precision,
    bytes_per_token,
    scoring_batch_tokens,
)
from harness.tasks.base import Message

CONFIGURED_BATCH_TOKENS = int(os.environ.get("TUNEBENCH_MAX_BATCH_TOKENS", 0)) or None
"""``TUNEBENCH_MAX_BATCH_TOKENS``: attended tokens per scoring batch, if set."""
MAX_BATCH_TOKENS = CONFIGURED_BATCH_TOKENS or DEFAULT_BATCH_TOKENS
"""Upper bound on attended tokens (cached prefix + padded suffix) per row x rows in a batch
on the CPU; on a GPU it scales with free memory
(:func:`harness.models.hardware.scoring_batch_tokens`)."""
MIN_SHARED_PREFIX = 8
"""Shorter common prefixes are not worth a separate cache."""
MAX_ROLLING_LENGTH = 2048
"""Upper bound on the window of ``loglikelihood_rolling`` (lm-eval HFLM's default maximum)."""


def _common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    first, shortest = min(sequences), max(sequences)  # lexicographic extremes bound the rest
    length = 0
    for a, b in zip(first, shortest, strict=False):
        if a != b:
            break
        length += 1
    return length


def length_batches(
    lengths: Sequence[int], shared: int = 0, budget: int = MAX_BATCH_TOKENS
) -> list[list[int]]:
    """Indices grouped longest-first so each batch attends to at most ``budget`` tokens
    (``shared`` cached prefix tokens plus the batch's longest row, times its rows)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for index in order:
        row_cost = shared + lengths[batches[-1][0]] if batches else 0
        if batches and row_cost * (len(batches[-1]) + 1) <= budget:
            batches[-1].append(index)
        else:
            batches.append([index])
    return batches


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


@torch.inference_mode()
def sum_token_logprobs(
    model: Any, requests: Sequence[tuple[Sequence[int], Sequence[int]]], pad_token_id: int | None,
    budget: int = MAX_BATCH_TOKENS,
) -> list[tuple[float, bool]]:
    """For each ``(input_ids, targets)``, the summed log-probability of ``targets`` predicted
    by the last ``len(targets)`` positions of ``input_ids``, and whether greedy decoding would
    produce them (lm-eval's ``(logprob, is_greedy)``).

    Rows are right-padded (causal attention never looks at the padding that follows a token),
    batched longest first under ``budget`` attended tokens and only the needed logits are computed.
    """
    for input_ids, targets in requests:
        if not targets or len(targets) > len(input_ids):
            raise ValueError("every request needs 1 to len(input_ids) targets")
    device = next(model.parameters()).device
    pad = 0 if pad_token_id is None else pad_token_id
    results: list[tuple[float, bool]] = [(0.0, False)] * len(requests)
    for batch in length_batches([len(inputs) for inputs, _ in requests], budget=budget):
        rows = [requests[b] for b in batch]
        width = len(rows[0][0])
        ids = torch.tensor([[*r, *[pad] * (width - len(r))] for r, _ in rows], device=device)
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r, _ in rows],
                            device=device)
        # Keep the logits from the first position any row scores to the end.
        keep = max(width - len(r) + len(t) for r, t in rows)
        logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=keep).logits
        for row, (b, (inputs, targets)) in enumerate(zip(batch, rows, strict=True)):
            end = keep - (width - len(inputs))
            predicted = logits[row, end - len(targets) : end].float().log_softmax(-1)
            target = torch.tensor(list(targets), device=device)
            logprob = predicted.gather(-1, target[:, None]).sum().item()
            results[b] = (logprob, bool((predicted.argmax(-1) == target).all()))
    return results


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

    def _rewrite_prompts(self, prompts: Sequence[Sequence[Message]]) -> list[list[Message]]:
        return [self.rewrite(prompt) for prompt in prompts]

    def without_rewriting(self) -> LMCandidate:
        """The same weights answering prompts as they come: itself if it rewrites nothing,
        else a shallow copy without ``rewrite``. The forgetting suite scores this view to
        tell forgetting (a change of the weights) from prompt interference (demonstrations
        or passages in front of an unrelated question)."""
        if "rewrite_prompts" not in self.__dict__:
            return self
        plain = copy.copy(self)
        del plain.__dict__["rewrite_prompts"]
        plain.rewrite = list
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
        if not self.share_prefix or len(sequences) < 2:
            return 0, None
        shared = min(_common_prefix_length(sequences), limit)
        if shared < MIN_SHARED_PREFIX:
            return 0, None
        cache = DynamicCache(config=self.model.config)
        ids = torch.tensor([list(sequences[0][:shared])], device=self.device)
        self.model(input_ids=ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
        return shared, cache

    def _inputs(self, suffixes: list[Sequence[int]], shared: int, cache: Any) -> dict[str, Any]:
        """Left-padded suffixes behind the shared prefix, with a per-row copy of its cache."""
        width = max(map(len, suffixes))
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(s)) + list(s) for s in suffixes])
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in suffixes])
        positions = shared + (mask.cumsum(-1) - 1).clamp(min=0)
        inputs: dict[str, Any] = {
            "input_ids": ids.to(self.device),
            "attention_mask": torch.cat(
                [torch.ones(len(suffixes), shared, dtype=mask.dtype), mask], dim=1
            ).to(self.device),
            "position_ids": positions.to(self.device),
        }
        if cache is not None:
            rows = copy.deepcopy(cache)
            rows.batch_repeat_interleave(len(suffixes))
            inputs["past_key_values"] = rows
        return inputs

    @in_precision
    @torch.inference_mode()
    def score_choices(
        self, prompts: Sequence[Sequence[Message]], choices: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        contexts: dict[tuple[int, ...], list[tuple[int, int, list[int]]]] = {}
        for i, (prompt, options) in enumerate(zip(prompts, choices, strict=True)):
            wanted = contexts.setdefault(tuple(self.prompt_ids(prompt)), [])
            for j, option in enumerate(options):
                continuation = self.tokenizer(option, add_special_tokens=False).input_ids
                if not continuation:
                    raise ValueError(f"choice {option!r} tokenizes to nothing")
                wanted.append((i, j, continuation))
        scores: list[list[float]] = [[0.0] * len(options) for options in choices]
        if not self.share_prefix:  # the model brings its own key/value prefix: whole sequences
            requests = [(i, j, ([*c, *k[:-1]], k)) for c, w in contexts.items() for i, j, k in w]
            results = sum_token_logprobs(self.model, [r for *_, r in requests],
                                         self.tokenizer.pad_token_id, self.batch_tokens)
            for (i, j, _), (logprob, _) in zip(requests, results, strict=True):
                scores[i][j] = logprob
            return scores
        distinct = list(contexts)
        # Every context keeps at least its last token after the shared prefix: it predicts
        # the first continuation token.
        shared, cache = self._prefix_cache(distinct, min(map(len, distinct)) - 1)
        for batch in length_batches([len(s) - shared for s in distinct], shared,
                                    self.batch_tokens):
            inputs = self._inputs([distinct[b][shared:] for b in batch], shared, cache)
            output = self.model(**inputs, use_cache=True, logits_to_keep=1)
            first = torch.log_softmax(output.logits[:, -1].float(), dim=-1)
            longer = []
            for row, b in enumerate(batch):
                for i, j, continuation in contexts[distinct[b]]:
                    scores[i][j] = first[row, continuation[0]].item()
                    if len(continuation) > 1:
                        longer.append((row, i, j, continuation))
            if longer:
                self._score_continuations(longer, output.past_key_values,
                                          inputs["attention_mask"], scores)
        return scores

    def _score_continuations(
        self, longer: list[tuple[int, int, int, list[int]]], cache: Any,
        context_mask: torch.Tensor, scores: list[list[float]],
    ) -> None:
        """Add the log-probabilities of continuation tokens after the first to ``scores``,
        each row continuing from its context's cached keys and values (``row`` of ``cache``),
        so a context is encoded once however many choices follow it."""
        attended = context_mask.sum(-1)  # cached tokens per context row = its next position
        width = context_mask.shape[1]
        step = max(1, self.batch_tokens // (width + max(len(k) for *_, k in longer)))
        pad = self.tokenizer.pad_token_id
        for start in range(0, len(longer), step):
            part = longer[start : start + step]
            extra = max(len(k) for *_, k in part) - 1
            rows = torch.tensor([row for row, *_ in part], device=self.device)
            ids = torch.tensor([[*k[:-1], *[pad] * (extra + 1 - len(k))] for *_, k in part],
                               device=self.device)
            tail = torch.tensor([[1] * (len(k) - 1) + [0] * (extra + 1 - len(k))
                                 for *_, k in part], device=self.device)
            last = start + step >= len(longer)  # the cache is not needed after the last part
            part_cache = cache if last else copy.deepcopy(cache)
            part_cache.batch_select_indices(rows)
            logits = self.model(
                input_ids=ids, attention_mask=torch.cat([context_mask[rows], tail], dim=1),
                position_ids=attended[rows, None] + torch.arange(extra, device=self.device),
                past_key_values=part_cache,
            ).logits.float()
            logprobs = torch.log_softmax(logits, dim=-1)
            for n, (_, i, j, continuation) in enumerate(part):
                target = torch.tensor(continuation[1:], device=self.device)
                scores[i][j] += logprobs[n, : len(target)].gather(-1, target[:, None]).sum().item()

    @in_precision
    @torch.inference_mode()
    def generate(
        self, prompts: Sequence[Sequence[Message]], max_new_tokens: int = 32
    ) -> list[str]:
        contexts = [self.prompt_ids(p) for p in prompts]
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
        )
        shared, cache = self._prefix_cache(contexts, min(map(len, contexts)) - 1)
        lengths = [len(c) - shared + max_new_tokens for c in contexts]
        outputs: list[str] = [""] * len(prompts)
        for batch in length_batches(lengths, shared, self.batch_tokens):
            inputs = self._inputs([contexts[b][shared:] for b in batch], shared, cache)
            inputs.pop("position_ids")  # generate() derives them from the attention mask
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
        scores = sum_token_logprobs(self.model, windows, self.tokenizer.pad_token_id,
                                    self.batch_tokens)
        for index, (logprob, _) in zip(owners, scores, strict=True):
            totals[index] += logprob
        return list(zip(totals, counts, strict=True))
