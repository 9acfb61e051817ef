"""Token log-probabilities that do not depend on precision rounding, batch or thread count.

Every choice score, raw-text likelihood and perplexity of the harness comes from
:func:`score_requests`: for each ``(input_ids, targets)``, the summed log-probability of
``targets`` predicted by the last ``len(targets)`` positions of ``input_ids``. Three
properties make a score the same number however and wherever it is computed:

- **The output layer in fp32.** Under bf16 autocast a model's logits come out rounded to
  bf16, whose resolution near a logit of 20 is 0.125: 71 of the 500 ``sentiment`` items
  scored zero-shot by the embedded model got exactly equal log-likelihoods for both labels,
  and a tie went to the first label. Here the forward pass hands its final hidden states
  over instead of computing logits (:func:`final_hidden_states`), and only the scored
  positions go through the output layer, in fp32 with fp32 weights (:func:`output_logits`):
  a few rows per item, so it costs little, and the log-softmax that decides sees fp32.
- **Batch invariance.** A row's numbers must not depend on the rows batched with it (He et
  al., 2025, "Defeating Nondeterminism in LLM Inference", Thinking Machines Lab: most
  run-to-run variation of inference comes from batch-dependent reductions). Left padding
  breaks it: the real tokens move along the key axis with the batch's width, so attention's
  reductions group their terms differently. On the embedded model in bf16, handing the same
  500 items over in chunks of 50 instead of 64 changed 171 scores and 6 predictions. Rows
  are therefore right-padded: every real token keeps its offset and padding only appends
  masked keys after it; and every forward pass covers at least ``MIN_POSITIONS`` positions a
  row, since fp32 products of a few rows take other kernels (the same row summed another
  way). The positions follow from the cache's length, so no position ids
  are passed.
- **Prefix caching that changes nothing.** The prefix the rows share (chat template, system
  prompt, instruction, demonstrations) is encoded once and its key/value cache put in front
  of every row (vLLM's automatic prefix caching; Kwon et al., 2023). Its keys and values are
  those the row would have computed itself, so a score is the same whether a prefix was
  shared, and how long it was (tests/test_scoring.py checks all three to the bit on the
  tiny model, at one and at two threads).

Models that bring their own key/value prefix (PEFT prompt learning) are scored without a
shared prefix (``share_prefix=False``); a prompt-tuning model's virtual tokens in front of
the sequence are allowed for.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from harness.models.hardware import DEFAULT_BATCH_TOKENS

MIN_POSITIONS = 16
"""Every forward pass of scoring covers at least this many positions per row (rows are
right-padded to it, and a shared prefix is at least this long): fp32 matrix products of
fewer than 8 rows take other kernels on the CPU, whose sums come out differently (see
``HEAD_BLOCK``), so a short suffix scored alone would not get the bits it gets in a batch."""
MIN_SHARED_PREFIX = MIN_POSITIONS
"""Shorter common prefixes are not worth a separate cache (nor safe, see above)."""
HEAD_BLOCK = 16
"""The scored positions go through the fp32 output layer in products of a multiple of this
many rows (zero rows fill the last): fp32 matrix products of fewer than 8 rows take other
kernels, whose sums come out differently (a one-row product differs from the same row in a
larger one; at 7 rows the result also changed with the thread count), while products of 8
rows and more gave every row the same bits whatever the row count, its place in the block and
the thread count (measured with torch 2.13 on the CPU; tests/test_scoring.py keeps checking)."""
HEAD_ROWS = 256
"""At most this many positions per fp32 product (bounds its memory: rows x vocabulary x 4
bytes, 50 MB for the embedded model's 49k tokens); a multiple of ``HEAD_BLOCK``."""

Request = tuple[Sequence[int], Sequence[int]]
"""``(input_ids, targets)``: the last ``len(targets)`` positions of ``input_ids`` predict
``targets``."""


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """How many leading tokens all ``sequences`` share."""
    first, last = min(sequences), max(sequences)  # lexicographic extremes bound the rest
    length = 0
    for a, b in zip(first, last, strict=False):
        if a != b:
            break
        length += 1
    return length


def length_batches(
    lengths: Sequence[int], shared: int = 0, budget: int = DEFAULT_BATCH_TOKENS
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


@contextlib.contextmanager
def final_hidden_states(model: Any) -> Iterator[list[torch.Tensor]]:
    """While open, every forward pass of ``model`` appends the input of its output layer
    (the final hidden states, after the last norm) to the yielded list, and the output
    layer itself computes logits for no position at all (a forward pre-hook empties its
    input), so ``logits`` come back with length 0 along the sequence."""
    head = model.get_output_embeddings()
    if head is None:
        raise ValueError(f"{type(model).__name__} has no output layer to score with")
    captured: list[torch.Tensor] = []

    def keep_input(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
        captured.append(args[0])
        return (args[0][..., :0, :], *args[1:])

    handle = head.register_forward_pre_hook(keep_input)
    try:
        yield captured
    finally:
        handle.remove()


def _post_processed(config: Any, logits: torch.Tensor) -> torch.Tensor:
    """What a model's forward does to its logits after the output layer: Gemma 2's
    ``final_logit_softcapping``, Cohere's ``logit_scale``, Granite's ``logits_scaling``."""
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    if scale := getattr(config, "logit_scale", None):
        logits = logits * scale
    if scaling := getattr(config, "logits_scaling", None):
        logits = logits / scaling
    if cap := getattr(config, "final_logit_softcapping", None):
        logits = torch.tanh(logits / cap) * cap
    return logits


def output_logits(model: Any, hidden: torch.Tensor) -> torch.Tensor:
    """fp32 logits of ``hidden`` (rows of final hidden states), in products of a multiple of
    ``HEAD_BLOCK`` rows: a plain linear output layer is applied with autocast off and its
    fp32 weights (the ``scoring_weight`` it kept when its weights went to bf16,
    :func:`harness.models.hardware.store_linear_weights`), so a model whose weights are stored
    in bf16 scores as it did under autocast over fp32 weights; any other (a PEFT-wrapped or
    quantized one) runs as it is and its output is read in fp32."""
    rows = len(hidden)
    filled = -(-rows // HEAD_BLOCK) * HEAD_BLOCK
    if filled != rows:
        hidden = torch.cat([hidden, hidden.new_zeros(filled - rows, *hidden.shape[1:])])
    head = model.get_output_embeddings()
    weight = getattr(head, "scoring_weight", None)  # fp32, kept when the layer went to bf16
    weight = getattr(head, "weight", None) if weight is None else weight
    plain = (isinstance(head, torch.nn.Linear) and weight is not None
             and type(weight) in (torch.nn.Parameter, torch.Tensor) and weight.is_floating_point())
    if plain:
        bias = None if head.bias is None else head.bias.float()
        with torch.autocast(hidden.device.type, enabled=False):
            logits = torch.nn.functional.linear(hidden.float(), weight.float(), bias)
    else:
        logits = head(hidden).float()
    return _post_processed(model.config, logits[:rows])


def encode_prefix(model: Any, sequences: Sequence[Sequence[int]], limit: int) -> tuple[int, Any]:
    """The key/value cache of the prefix all ``sequences`` share, at most ``limit`` tokens:
    ``(length, cache)``, or ``(0, None)`` when it is shorter than ``MIN_SHARED_PREFIX`` or
    there is a single sequence."""
    if len(sequences) < 2:
        return 0, None
    shared = min(common_prefix_length(sequences), limit)
    if shared < MIN_SHARED_PREFIX:
        return 0, None
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    device = next(model.parameters()).device
    with final_hidden_states(model):
        model(input_ids=torch.tensor([list(sequences[0][:shared])], device=device),
              past_key_values=cache, use_cache=True)
    return shared, cache


def _forward_rows(model: Any, suffixes: list[Sequence[int]], shared: int, cache: Any,
                  pad: int) -> torch.Tensor:
    """Final hidden states of right-padded ``suffixes`` behind the shared prefix's cache:
    ``[rows, positions, hidden]``, the last ``width`` positions being the suffixes'."""
    device = next(model.parameters()).device
    width = max(*map(len, suffixes), MIN_POSITIONS)
    ids = torch.tensor([[*s, *[pad] * (width - len(s))] for s in suffixes], device=device)
    mask = torch.tensor([[1] * (shared + len(s)) + [0] * (width - len(s)) for s in suffixes],
                        device=device)
    inputs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "use_cache": False}
    if cache is not None:
        rows = copy.deepcopy(cache)
        rows.batch_repeat_interleave(len(suffixes))
        inputs.update(past_key_values=rows, use_cache=True)
    with final_hidden_states(model) as captured:
        model(**inputs)
    return captured[-1]


@torch.inference_mode()
def score_requests(
    model: Any, requests: Sequence[Request], pad_token_id: int | None,
    budget: int = DEFAULT_BATCH_TOKENS, *, share_prefix: bool = True,
) -> list[tuple[float, bool]]:
    """For each ``(input_ids, targets)``, the summed log-probability of ``targets`` predicted
    by the last ``len(targets)`` positions of ``input_ids``, and whether greedy decoding would
    produce them (lm-eval's ``(logprob, is_greedy)``).

    Requests with the same ``input_ids`` (the choices of one prompt that are one token long)
    share one row. Rows are right-padded, batched longest first under ``budget`` attended
    tokens, behind the key/value cache of the prefix they all share (``share_prefix``); only
    the scored positions go through the output layer, in fp32. See the module's docstring for
    why the result does not depend on the batch, the prefix or the thread count.
    """
    rows_of: dict[tuple[int, ...], list[int]] = {}
    for index, (input_ids, targets) in enumerate(requests):
        if not targets or len(targets) > len(input_ids):
            raise ValueError("every request needs 1 to len(input_ids) targets")
        rows_of.setdefault(tuple(input_ids), []).append(index)
    if not requests:
        return []
    distinct = list(rows_of)
    spans = [max(len(requests[i][1]) for i in rows_of[s]) for s in distinct]
    shared, cache = 0, None
    if share_prefix:  # a row keeps every position it scores
        limit = min(len(s) - span for s, span in zip(distinct, spans, strict=True))
        shared, cache = encode_prefix(model, distinct, limit)
    pad = 0 if pad_token_id is None else pad_token_id
    device = next(model.parameters()).device
    results: list[tuple[float, bool]] = [(0.0, False)] * len(requests)
    for batch in length_batches([len(s) - shared for s in distinct], shared, budget):
        suffixes = [distinct[b][shared:] for b in batch]
        hidden = _forward_rows(model, suffixes, shared, cache, pad)
        offset = hidden.shape[1] - max(*map(len, suffixes), MIN_POSITIONS)  # virtual tokens
        rows, positions, starts = [], [], []
        for row, b in enumerate(batch):
            end = offset + len(suffixes[row])
            starts.append(len(positions))
            rows += [row] * spans[b]
            positions += range(end - spans[b], end)
        picked = hidden[torch.tensor(rows, device=device), torch.tensor(positions, device=device)]
        logprobs = torch.cat([output_logits(model, picked[i : i + HEAD_ROWS]).log_softmax(-1)
                              for i in range(0, len(picked), HEAD_ROWS)])
        for row, b in enumerate(batch):
            span_end = starts[row] + spans[b]
            for index in rows_of[distinct[b]]:
                targets = torch.tensor(list(requests[index][1]), device=device)
                scored = logprobs[span_end - len(targets) : span_end]
                results[index] = (scored.gather(-1, targets[:, None]).sum().item(),
                                  bool((scored.argmax(-1) == targets).all()))
    return results

