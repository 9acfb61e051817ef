"""Scores exact to the last bit: the fp32 output layer, batch and thread invariance, ties."""

import collections

import pytest
import torch

import harness.models.scoring as scoring
from harness.measure.evaluate import best_choice, score_by_choice, tied_items
from harness.models.hardware import Precision
from harness.models.lm_candidate import LMCandidate
from harness.models.loading import load_model, resolve_model
from harness.tasks.base import Example

WORDS = ["great food", "the battery died after an hour", "never again", "ok", "lovely staff",
         "the room was clean and quiet", "slow service", "I loved it", "bad", "fine"]
SYSTEM = {"role": "system", "content": "Classify the review as positive or negative."}
PROMPTS = [[SYSTEM, {"role": "user", "content": f"Review: {w} {v}"}]
           for w in WORDS for v in WORDS[:3]]
CHOICES = [("positive", "negative", "not good at all")] * len(PROMPTS)


def fresh_candidate(model_dir, precision: str) -> LMCandidate:
    """A candidate on its own copy of the tiny model (a precision casts the weights)."""
    model, tokenizer = load_model(resolve_model(str(model_dir)), torch.device("cpu"),
                                  torch.float32)
    candidate = LMCandidate(model, tokenizer)
    candidate.set_precision(Precision(precision, torch.device("cpu")))
    return candidate


def scores_in_chunks(candidate, size: int, threads: int) -> list[list[float]]:
    """Score every prompt, ``size`` prompts per call, on ``threads`` threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        scores = []
        for start in range(0, len(PROMPTS), size):
            scores += candidate.score_choices(PROMPTS[start:start + size],
                                              CHOICES[start:start + size])
        return scores
    finally:
        torch.set_num_threads(before)


def quantized_candidate(model_dir) -> LMCandidate:
    """A candidate on the tiny model quantized to 4-bit NF4 with double quantization, as
    QLoRA loads its base, computing in bf16."""
    from transformers import BitsAndBytesConfig

    quantization = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    model, tokenizer = load_model(resolve_model(str(model_dir)), torch.device("cpu"),
                                  torch.float32, quantization_config=quantization)
    candidate = LMCandidate(model, tokenizer)
    candidate.set_precision(Precision("bf16", torch.device("cpu")))
    return candidate


@pytest.mark.parametrize("precision", ["fp32", "bf16", "bf16-nf4"])
def test_the_same_bits_at_any_thread_count_batch_and_prefix(tiny_model_dir, precision,
                                                            monkeypatch):
    candidate = (quantized_candidate(tiny_model_dir) if precision == "bf16-nf4"
                 else fresh_candidate(tiny_model_dir, precision))
    reference = scores_in_chunks(candidate, len(PROMPTS), threads=1)
    assert scores_in_chunks(candidate, len(PROMPTS), threads=2) == reference
    assert scores_in_chunks(candidate, 7, threads=1) == reference  # other batches, prefixes
    assert scores_in_chunks(candidate, 1, threads=1) == reference  # one prompt per call
    candidate.batch_tokens = 60  # a batch of a few rows each
    assert scores_in_chunks(candidate, len(PROMPTS), threads=1) == reference
    monkeypatch.setattr(scoring, "MIN_SHARED_PREFIX", 10**9)  # no prefix cache at all
    assert scores_in_chunks(candidate, len(PROMPTS), threads=1) == reference


def test_scores_are_those_of_one_plain_forward_pass(tiny_model_dir):
    candidate = fresh_candidate(tiny_model_dir, "fp32")
    scores = candidate.score_choices(PROMPTS[:6], CHOICES[:6])
    for prompt, row in zip(PROMPTS[:6], scores, strict=True):
        context = candidate.prompt_ids(prompt)
        for choice, score in zip(CHOICES[0], row, strict=True):
            target = candidate.tokenizer(choice, add_special_tokens=False).input_ids
            with torch.no_grad():
                logits = candidate.model(torch.tensor([context + target])).logits[0]
            logprobs = logits.float().log_softmax(-1)
            expected = sum(logprobs[len(context) - 1 + t, token].item()
                           for t, token in enumerate(target))
            assert score == pytest.approx(expected, abs=1e-4)


def near_twin_labels(candidate) -> tuple[str, str]:
    """Make two one-token labels' output rows differ in one coordinate by 0.01, with logits
    far from zero: bf16 logits (resolution 0.125 to 0.25 there) cannot tell them apart."""
    tokenizer, head = candidate.tokenizer, candidate.model.get_output_embeddings()
    ids = [i for i in range(len(tokenizer))
           if (text := tokenizer.decode([i])).isalpha() and len(text) > 2
           and tokenizer(text, add_special_tokens=False).input_ids == [i]][:2]
    with torch.no_grad():
        row = torch.randn(head.weight.shape[1], generator=torch.Generator().manual_seed(0))
        head.weight[ids[0]] = 60 * row / row.norm()
        head.weight[ids[0], 0] = 0.0  # bf16 keeps a difference of 0.01 only next to zero
        head.weight[ids[1]] = head.weight[ids[0]]
        head.weight[ids[1], 0] = 0.01
    return tokenizer.decode([ids[0]]), tokenizer.decode([ids[1]])


def test_the_output_layer_in_fp32_breaks_the_ties_of_bf16_logits(tiny_model_dir):
    model, tokenizer = load_model(resolve_model(str(tiny_model_dir)), torch.device("cpu"),
                                  torch.float32)
    model.config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
    candidate = LMCandidate(model, tokenizer)
    labels = near_twin_labels(candidate)
    candidate.set_precision(Precision("bf16", torch.device("cpu")))
    examples = [Example(id=f"item-{i}", messages=tuple(p), answer=labels[0], choices=labels)
                for i, p in enumerate(PROMPTS)]
    ids = [tokenizer(label, add_special_tokens=False).input_ids[0] for label in labels]
    with torch.no_grad(), candidate.autocast():  # the bf16 logits the model itself returns
        bf16_logits = [candidate.model(torch.tensor([candidate.prompt_ids(p)])).logits[0, -1]
                       for p in PROMPTS]
    bf16_ties = sum(bool(row[ids[0]] == row[ids[1]]) for row in bf16_logits)
    assert bf16_ties >= len(PROMPTS) // 2  # the control: bf16 logits do tie here

    rows = score_by_choice(candidate, examples)
    assert tied_items(rows) == 0
    assert all(r["extra"]["choice_logprobs"][labels[0]] != r["extra"]["choice_logprobs"][labels[1]]
               for r in rows)


def test_a_tie_goes_to_no_position_in_particular():
    picks = collections.Counter(best_choice([-1.0, -1.0, -3.0], f"item-{i}") for i in range(400))
    assert set(picks) == {(0, 2), (1, 2)}  # the tied two, never the lower third
    assert 150 < picks[(0, 2)] < 250  # about half each: the first choice is not favoured
    assert best_choice([-1.0, -1.0], "item-7") == best_choice([-1.0, -1.0], "item-7")
    assert best_choice([-2.0, -1.0, -1.5], "item-7") == (1, 1)


def test_tied_rows_say_so_and_are_counted():
    examples = [Example(id=f"i{n}", messages=tuple(PROMPTS[0]), answer="a", choices=("a", "b"))
                for n in range(40)]

    class Flat:  # a candidate that cannot tell the choices apart
        def score_choices(self, prompts, choices):
            return [[-0.5, -0.5] for _ in prompts]

    rows = score_by_choice(Flat(), examples)
    assert tied_items(rows) == 40 and all(r["extra"]["tied"] == 2 for r in rows)
    assert {r["prediction"] for r in rows} == {"a", "b"}


def test_prompt_tuning_virtual_tokens_are_allowed_for(tiny_model_dir):
    """A prompt-tuning model puts virtual tokens in front of the sequence; scores still come
    from the right positions (as one plain forward pass of the PEFT model gives them)."""
    from peft import PromptTuningConfig, get_peft_model

    model, tokenizer = load_model(resolve_model(str(tiny_model_dir)), torch.device("cpu"),
                                  torch.float32)
    peft_model = get_peft_model(model, PromptTuningConfig(task_type="CAUSAL_LM",
                                                          num_virtual_tokens=5))
    candidate = LMCandidate(peft_model, tokenizer, share_prefix=False)
    scores = candidate.score_choices(PROMPTS[:3], CHOICES[:3])
    for prompt, row in zip(PROMPTS[:3], scores, strict=True):
        context = candidate.prompt_ids(prompt)
        for choice, score in zip(CHOICES[0], row, strict=True):
            target = tokenizer(choice, add_special_tokens=False).input_ids
            with torch.no_grad():
                logits = peft_model(input_ids=torch.tensor([context + target])).logits[0]
            logprobs = logits[-len(context) - len(target):].float().log_softmax(-1)
            expected = sum(logprobs[len(context) - 1 + t, token].item()
                           for t, token in enumerate(target))
            assert score == pytest.approx(expected, abs=1e-4)
