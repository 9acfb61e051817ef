"""Latency, memory and cost of every candidate, measured by the harness (harness.measure.latency).

Per candidate: time to first token, end-to-end latency at batch size 1 (p50/p95/p99 with
bootstrap CIs), decode time per token (on a fixed number of new tokens, end-of-sequence
ignored, when the candidate's ``generate`` takes ``ignore_eos``; else on the tokens it
produces, recorded as ``fixed_length=False``), batched throughput, peak memory while serving,
and cost figures at ``--price-per-hour``. Adapter candidates are also measured merged into the
base; QLoRA candidates also on the dequantized base: each variant timed interleaved with the
candidate (ABBA, ``measure_pair``), with the variant's own figures (``merged_*``) and paired
ratios variant / candidate (``merged_latency_ratio``, ``merged_decode_ratio``: ratios of mean
end-to-end latency and of mean decode time per token over the same requests, CIs from a
bootstrap resampling the pairs together). RAG candidates split retrieval from generation.
Training cost (time, memory, parameters, artifact) is recorded by the harness when the
candidate is prepared (suite ``prepare``). With ``--time-budget`` the suite may be cut short
(:mod:`harness.runner.time_budget`): it then times its share of the requests, and the latency
figures say so (``n_scored``, ``n_available``, ``stopped: budget``).
"""

import gc
import math

import pytest

from harness.measure.latency import measure, measure_pair, paired_ratios, variants
from harness.measure.metrics import mean, percentile
from harness.runner.resources import peak_memory
from harness.runner.time_budget import cut_short

REQUESTS = {"smoke": 3, "quick": 24, "full": 48}
"""Batch-1 requests per candidate (the first eval prompts) at each budget."""
SMOKE_DECODE = {"decode_prompts": ("Describe a quiet morning in a small town.",),
                "decode_tokens": 16}
"""Decoding at the smoke budget: one prompt, enough tokens that 15 decode steps outweigh the
timer noise of subtracting the TTFT call (6 left some figures negative on the tiny model)."""


def _decode_method(sample):
    """How decode time per token was measured (extras of its metrics)."""
    generated = sample.decode_generated
    return {"fixed_length": sample.decode_fixed_length, "decode_tokens": sample.decode_tokens,
            "generated_tokens": sum(generated) / len(generated) if generated else 0.0}


def requests_of(tunebench, task_data):
    """The batch-1 requests to time (the first eval prompts; fewer when the time budget cuts
    the suite short) and the extras their figures carry."""
    available = REQUESTS[tunebench.budget.name]
    budget = tunebench.time_budget
    timed = available if budget is None else budget.allowed(available)
    return [e.messages for e in task_data.eval[:timed]], cut_short(timed, available)


def _record_sample(record, sample, seed, prefix="", extra=None):
    ms, extra = 1000.0, extra or {}
    for q in (50, 95, 99):
        record.metric(f"{prefix}latency_p{q}_ms",
                      percentile([s * ms for s in sample.end_to_end], q, seed=seed), **extra)
    record.metric(f"{prefix}ttft_ms", mean([s * ms for s in sample.ttft], seed=seed), **extra)
    if sample.decode_per_token:
        method = _decode_method(sample)
        per_token = mean([s * ms for s in sample.decode_per_token], seed=seed)
        record.metric(f"{prefix}decode_ms_per_token", per_token, **method)
        if per_token.value > 0:  # timer noise on a few tiny fixed-length replies can cancel
            record.metric(f"{prefix}decode_tokens_per_second", 1000.0 / per_token.value,
                          **method)
    record.metric(f"{prefix}batched_requests_per_second",
                  sample.batched_requests / sample.batched_seconds,
                  batch=sample.batched_requests)


def _decode_options(budget):
    return SMOKE_DECODE if budget == "smoke" else {}


def test_latency(candidate, task, task_data, tunebench, record, run_seed):
    requests, extra = requests_of(tunebench, task_data)
    with peak_memory(tunebench.device) as memory:
        sample = measure(candidate, requests, task.max_new_tokens,
                         **_decode_options(tunebench.budget.name))
    _record_sample(record, sample, run_seed, extra=extra)
    record.metric("serving_peak_memory_bytes", memory["peak_memory_bytes"],
                  kind=memory["peak_memory_kind"])
    phases = sorted({name for p in sample.phases for name in p})
    for name in phases:
        spent = [p.get(name, 0.0) * 1000 for p in sample.phases]
        record.metric(name.removesuffix("_seconds") + "_ms", mean(spent, seed=run_seed))
    if phases:
        model_ms = [(total - sum(p.values())) * 1000
                    for total, p in zip(sample.end_to_end, sample.phases, strict=True)]
        record.metric("model_ms", mean(model_ms, seed=run_seed))
    record.examples([
        {"item_id": e.id, "prompt": e.prompt_text, "latency_ms": total * 1000,
         "extra": {"ttft_ms": first * 1000, "tokens": tokens,
                   **{k.removesuffix("_seconds") + "_ms": v * 1000 for k, v in p.items()}}}
        for e, total, first, tokens, p in zip(
            task_data.eval, sample.end_to_end, sample.ttft, sample.end_to_end_tokens,
            sample.phases, strict=False)
    ])

    assert len(sample.end_to_end) == len(requests)
    assert all(t > 0 and math.isfinite(t) for t in sample.end_to_end + sample.ttft)
    assert sample.batched_seconds > 0
    if sample.decode_fixed_length:  # a known token count: a figure for every decode prompt
        assert len(sample.decode_per_token) == len(sample.decode_generated) > 0


def test_cost(candidate, tunebench, record):
    price = tunebench.options.price_per_hour
    train_seconds = candidate.info.get("train_seconds", 0.0) or 0.0
    train_cost = train_seconds / 3600 * price
    record.metric("train_cost", train_cost, price_per_hour=price)
    measured = tunebench.store.query(
        "SELECT value FROM metrics WHERE run_id = ? AND suite = 'latency' "
        "AND name = 'batched_requests_per_second' ORDER BY id DESC LIMIT 1", (record.run.id,))
    if measured:  # an hour of serving at the measured batched rate, per 1,000 requests
        serving_cost = 1000 / measured[0]["value"] / 3600 * price
        record.metric("cost_per_1k_requests", serving_cost,
                      price_per_hour=price)
    recorded = {row["name"]: row["value"] for row in tunebench.store.query(
        "SELECT name, value FROM metrics WHERE run_id = ? AND suite = 'latency' "
        "AND name IN ('train_cost', 'cost_per_1k_requests')", (record.run.id,))}
    assert recorded["train_cost"] == pytest.approx(train_cost)
    if measured:
        assert recorded["cost_per_1k_requests"] == pytest.approx(serving_cost)
        assert recorded["cost_per_1k_requests"] > 0 or price == 0


def test_latency_variants(candidate, task, task_data, tunebench, record, run_seed):
    built = variants(candidate, tunebench.load_base)
    if not built:
        pytest.skip("no other deployment of this candidate (not a PEFT adapter model)")
    requests, extra = requests_of(tunebench, task_data)
    for name, build in built.items():
        variant = build()
        mine, theirs = measure_pair(candidate, variant, requests, task.max_new_tokens,
                                    **_decode_options(tunebench.budget.name))
        _record_sample(record, theirs, run_seed, prefix=f"{name}_", extra=extra)
        ratios = paired_ratios(mine, theirs, seed=run_seed)
        record.metric(f"{name}_latency_ratio", ratios["latency"], statistic="ratio of means",
                      paired_requests=len(mine.end_to_end))
        if "decode" in ratios:
            record.metric(f"{name}_decode_ratio", ratios["decode"],
                          statistic="ratio of means", **_decode_method(theirs))
        del variant
        gc.collect()
        assert len(mine.end_to_end) == len(theirs.end_to_end) == len(requests)
        assert ratios["latency"].value > 0
