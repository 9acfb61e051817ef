"""Latency and throughput of a candidate, measured by the harness around its public calls.

Every candidate is timed the same way, through ``generate``, never by its own code:

- time to first token (TTFT): a request asking for one new token (prompt processing, plus
  retrieval for RAG candidates);
- end-to-end latency of the task's own requests at batch size 1, with p50/p95/p99;
- decode time per token: open-ended requests answered with exactly ``DECODE_TOKENS`` new
  tokens, end-of-sequence ignored (``generate(..., ignore_eos=True)``), as llama.cpp's
  ``llama-bench`` times text generation (its ``tg`` test: a fixed number of tokens, never
  stopping early) and vLLM's ``benchmark_serving`` does with ``--ignore-eos``. The figure is
  ``(total - TTFT) / (DECODE_TOKENS - 1)``, the split serving benchmarks report (vLLM: TTFT
  and time per output token), with the token count known, so a terse or broken candidate
  that would stop after one token is timed on as many tokens as any other. The tokens in the
  reply are still counted (:func:`count_tokens`) and recorded (``decode_generated``). A
  candidate whose ``generate`` does not take ``ignore_eos``
  (:func:`~harness.core.capabilities.decodes_fixed_length`: e.g. a plugin written before the
  keyword) is asked for ``DECODE_TOKENS`` and divided by the tokens it produced, as before;
  a reply shorter than 2 tokens then gives no figure. ``LatencySample.decode_fixed_length``
  says which method was used;
- batched throughput: all requests in one call, batched however the candidate batches.

Warm-up requests run first and are not counted (first calls pay for allocations). Variants
of a candidate (adapters merged into the weights, a 4-bit base dequantized) are built here
from the candidate's model so they are measured by the same code, interleaved with the
candidate (:func:`measure_pair`), and compared by :func:`paired_ratios`: the ratio of means,
variant over candidate, over the same requests (or decode prompts) timed on both, with a
percentile-bootstrap CI that resamples the pairs together.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.core.approach import Candidate
from harness.core.capabilities import decodes_fixed_length
from harness.measure.evaluate import timed
from harness.measure.metrics import Estimate, ratio
from harness.tasks.base import Message

DECODE_PROMPTS: tuple[str, ...] = (
    "Explain in a few sentences how a bicycle turns pedalling into motion.",
    "Describe a quiet morning in a small town.",
    "Give some practical advice for keeping houseplants healthy.",
    "Write a short paragraph about why people keep diaries.",
    "Explain what a library catalogue is for.",
    "Describe how bread dough rises.",
)
"""Open-ended requests, whose answers would run past the decode length anyway (so the
fallback method, for candidates that cannot ignore end-of-sequence, gets figures too)."""
DECODE_TOKENS = 32
"""New tokens per decode prompt (``llama-bench -n``, vLLM's output length)."""
WARMUP_REQUESTS = 2


@dataclass
class LatencySample:
    """The raw timings of one measurement (seconds; tokens counted with the tokenizer)."""

    ttft: list[float] = field(default_factory=list)
    end_to_end: list[float] = field(default_factory=list)
    end_to_end_tokens: list[int] = field(default_factory=list)
    phases: list[dict[str, float]] = field(default_factory=list)
    """Per request, how the candidate's phase timers moved (e.g. ``retrieval_seconds``)."""
    decode_per_token: list[float] = field(default_factory=list)
    decode_items: list[int] = field(default_factory=list)
    """For each ``decode_per_token`` figure, the index of the decode prompt it timed (the
    fallback method leaves out replies too short to time, so the lists can be shorter)."""
    decode_generated: list[int] = field(default_factory=list)
    """Tokens counted in each decode prompt's reply (:func:`count_tokens`), every prompt."""
    decode_tokens: int = 0
    """New tokens asked for per decode prompt."""
    decode_fixed_length: bool | None = None
    """True: decoded ``decode_tokens`` with end-of-sequence ignored; False: the candidate's
    ``generate`` has no ``ignore_eos``, timed on the tokens it produced; None: not timed."""
    batched_seconds: float = 0.0
    batched_requests: int = 0
    batched_tokens: int = 0


def count_tokens(candidate: Candidate, text: str) -> int:
    """Generated tokens: by the candidate's tokenizer, or words if it has none."""
    tokenizer = getattr(candidate, "tokenizer", None)
    if tokenizer is None:
        return len(text.split())
    return len(tokenizer(text, add_special_tokens=False).input_ids)


def _timed_generate(
    candidate: Candidate, prompts: Sequence[Sequence[Message]], max_new_tokens: int,
    *, ignore_eos: bool = False,
) -> tuple[list[str], float, dict[str, float]]:
    fixed = {"ignore_eos": True} if ignore_eos else {}  # a legacy generate has no keyword
    return timed(candidate, lambda: candidate.generate(prompts, max_new_tokens, **fixed))


def _warm_up(candidate: Candidate, requests: Sequence[Sequence[Message]],
             max_new_tokens: int) -> None:
    for prompt in list(requests[:WARMUP_REQUESTS]):
        candidate.generate([prompt], max_new_tokens)


def _time_request(candidate: Candidate, prompt: Sequence[Message], max_new_tokens: int,
                  sample: LatencySample) -> None:
    _, first, _ = _timed_generate(candidate, [prompt], 1)
    outputs, total, phases = _timed_generate(candidate, [prompt], max_new_tokens)
    sample.ttft.append(first)
    sample.end_to_end.append(total)
    sample.end_to_end_tokens.append(count_tokens(candidate, outputs[0]))
    sample.phases.append(phases)


def _time_decode(candidate: Candidate, index: int, text: str, decode_tokens: int,
                 sample: LatencySample) -> None:
    """Time decode prompt ``index``: one token, then ``decode_tokens`` (end-of-sequence
    ignored if the candidate can), both through ``generate``."""
    fixed = decodes_fixed_length(candidate)
    sample.decode_fixed_length, sample.decode_tokens = fixed, decode_tokens
    prompt = [{"role": "user", "content": text}]
    _, first, _ = _timed_generate(candidate, [prompt], 1, ignore_eos=fixed)
    outputs, total, _ = _timed_generate(candidate, [prompt], decode_tokens, ignore_eos=fixed)
    counted = count_tokens(candidate, outputs[0])
    sample.decode_generated.append(counted)
    if fixed:  # the count is known: every prompt gives a figure, noise included (kept even
        # when not positive, so the mean stays unbiased where noise is larger than decoding)
        sample.decode_per_token.append((total - first) / (decode_tokens - 1))
        sample.decode_items.append(index)
    elif counted >= 2 and total > first:  # else too short to tell decoding from noise
        sample.decode_per_token.append((total - first) / (counted - 1))
        sample.decode_items.append(index)


def _time_batched(candidate: Candidate, requests: Sequence[Sequence[Message]],
                  max_new_tokens: int, sample: LatencySample) -> None:
    outputs, seconds, _ = _timed_generate(candidate, list(requests), max_new_tokens)
    sample.batched_seconds = seconds
    sample.batched_requests = len(requests)
    sample.batched_tokens = sum(count_tokens(candidate, text) for text in outputs)


def measure(
    candidate: Candidate,
    requests: Sequence[Sequence[Message]],
    max_new_tokens: int,
    *,
    decode_prompts: Sequence[str] = DECODE_PROMPTS,
    decode_tokens: int = DECODE_TOKENS,
) -> LatencySample:
    """Time ``requests`` one by one and batched, and decoding on ``decode_prompts``
    (``decode_tokens`` new tokens each, at least 2: the first is TTFT's)."""
    _check_decode_tokens(decode_prompts, decode_tokens)
    sample = LatencySample()
    _warm_up(candidate, requests, max_new_tokens)
    for prompt in requests:
        _time_request(candidate, prompt, max_new_tokens, sample)
    for index, text in enumerate(decode_prompts):
        _time_decode(candidate, index, text, decode_tokens, sample)
    _time_batched(candidate, requests, max_new_tokens, sample)
    return sample


def measure_pair(
    first: Candidate,
    second: Candidate,
    requests: Sequence[Sequence[Message]],
    max_new_tokens: int,
    *,
    decode_prompts: Sequence[str] = DECODE_PROMPTS,
    decode_tokens: int = DECODE_TOKENS,
) -> tuple[LatencySample, LatencySample]:
    """:func:`measure` of two candidates whose speeds are compared, interleaved: each request
    (and decode prompt, and the batched call) is timed on both, the order alternating
    (ABBA), so a drift of the machine's speed during the measurement (another process, the
    clock, caches) falls on both sides alike instead of on whichever was timed second. Timed
    one after the other, two copies of the same model differed by 20% in decode time here."""
    _check_decode_tokens(decode_prompts, decode_tokens)
    samples = (LatencySample(), LatencySample())
    pair = ((first, samples[0]), (second, samples[1]))

    def in_turn(index: int):
        return pair if index % 2 == 0 else pair[::-1]

    for candidate, _ in pair:
        _warm_up(candidate, requests, max_new_tokens)
    for index, prompt in enumerate(requests):
        for candidate, sample in in_turn(index):
            _time_request(candidate, prompt, max_new_tokens, sample)
    for index, text in enumerate(decode_prompts):
        for candidate, sample in in_turn(index):
            _time_decode(candidate, index, text, decode_tokens, sample)
    for candidate, sample in pair:
        _time_batched(candidate, requests, max_new_tokens, sample)
    return samples


def _check_decode_tokens(decode_prompts: Sequence[str], decode_tokens: int) -> None:
    if decode_prompts and decode_tokens < 2:
        raise ValueError(f"decode_tokens must be at least 2 (the first token is the TTFT "
                         f"request's), got {decode_tokens}")


def paired_decode(first: LatencySample, second: LatencySample
                  ) -> tuple[list[float], list[float]]:
    """The decode times per token of the decode prompts both samples timed, in pairs (same
    prompt on both sides; a fallback-method sample may lack some)."""
    theirs = dict(zip(second.decode_items, second.decode_per_token, strict=True))
    pairs = [(mine, theirs[item])
             for item, mine in zip(first.decode_items, first.decode_per_token, strict=True)
             if item in theirs]
    return [a for a, _ in pairs], [b for _, b in pairs]


def _mean_ratio(numerator: Sequence[float], denominator: Sequence[float], seed: int
                ) -> Estimate:
    """``mean(numerator) / mean(denominator)`` over pairs (one of each per item), with a
    paired percentile-bootstrap CI: each resample draws items, keeping their pairs."""
    if len(numerator) != len(denominator) or not numerator:
        raise ValueError(f"need as many values on both sides, at least one: got "
                         f"{len(numerator)} and {len(denominator)}")
    return ratio(numerator, denominator, lambda v: np.mean(v, axis=1), seed=seed)


def paired_ratios(candidate: LatencySample, variant: LatencySample, *, seed: int = 0
                  ) -> dict[str, Estimate]:
    """How much slower ``variant`` is than ``candidate``, both from one :func:`measure_pair`:
    ``latency``, the ratio of mean end-to-end latencies over the same requests, and
    ``decode``, the ratio of mean decode times per token over the decode prompts timed on
    both: variant over candidate (below 1: the variant is faster), each a ratio of means
    with a bootstrap CI resampling the pairs together. ``decode`` is absent when no prompt
    was timed on both, or when a side's mean is not positive (timer noise larger than the
    decoding itself, e.g. a few tokens of a tiny model: no ratio means anything then)."""
    ratios = {"latency": _mean_ratio(variant.end_to_end, candidate.end_to_end, seed)}
    ours, theirs = paired_decode(candidate, variant)
    if ours and np.mean(ours) > 0 and np.mean(theirs) > 0:
        ratios["decode"] = _mean_ratio(theirs, ours, seed)
    return ratios


def _is_quantized(model: Any) -> bool:
    return any(type(p).__name__ == "Params4bit" for p in model.parameters())


def _like(candidate: Candidate, variant: Candidate) -> Candidate:
    """``variant`` computing in the same precision as ``candidate``."""
    if candidate.precision is not None:
        variant.set_precision(candidate.precision)
    return variant


def variants(
    candidate: Candidate, load_base: Callable[..., tuple[Any, Any]]
) -> dict[str, Callable[[], Candidate]]:
    """Other deployments of the same trained weights, built on demand.

    - ``merged``: a PEFT adapter that can be folded into the base weights
      (``merge_and_unload``; LoRA, IA3, LoHa...), so inference pays no adapter side-path;
    - ``dequantized``: a 4-bit base replaced by the full-precision base with the same
      adapter (QLoRA's adapters on the fp32/bf16 model).
    Candidates that rewrite prompts or wrap another candidate are measured as they are.
    """
    from harness.models.lm_candidate import LMCandidate

    model = getattr(candidate, "model", None)
    if type(candidate) is not LMCandidate or model is None:
        return {}
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a dependency
        return {}
    if not isinstance(model, PeftModel):
        return {}
    tokenizer = candidate.tokenizer
    built: dict[str, Callable[[], Candidate]] = {}
    config = model.peft_config[model.active_adapter]
    if not getattr(config, "is_prompt_learning", False):

        def merged() -> Candidate:
            return _like(candidate, LMCandidate(copy.deepcopy(model).merge_and_unload().eval(),
                                                tokenizer))

        built["merged"] = merged
    if _is_quantized(model):
        adapter_dir = candidate.info.get("artifact_dir")

        def dequantized() -> Candidate:
            if not adapter_dir:
                raise RuntimeError("the candidate records no artifact_dir to reload from")
            base, _ = load_base()
            return _like(candidate, LMCandidate(PeftModel.from_pretrained(base, adapter_dir).eval(),
                                                tokenizer))

        built["dequantized"] = dequantized
    return built
