"""The LM candidate's batched scoring and generation on a tiny in-process model."""

import numpy as np
import pytest

import harness.models.scoring as scoring_module
from harness.core.capabilities import CarriesRewardModel, RewritesPrompts
from harness.models.lm_candidate import LMCandidate

SYSTEM = {"role": "system", "content": "Classify the review as positive or negative."}
PROMPTS = [
    [SYSTEM, {"role": "user", "content": "Review: " + text}]
    for text in ["great food", "the battery died after an hour", "never again", "ok",
                 "the staff were lovely and the room was clean"]
]
CHOICES = [("positive", "negative")] * len(PROMPTS)


@pytest.fixture
def candidate(tiny_lm):
    model, tokenizer = tiny_lm
    return LMCandidate(model, tokenizer)


@pytest.fixture
def no_prefix_cache(monkeypatch):
    monkeypatch.setattr(scoring_module, "MIN_SHARED_PREFIX", 10**9)


def manual_logprob(candidate, prompt, choice):
    """Reference: one unbatched forward pass over prompt + choice."""
    import torch

    context = candidate.prompt_ids(prompt)
    continuation = candidate.tokenizer(choice, add_special_tokens=False).input_ids
    ids = torch.tensor([context + continuation])
    with torch.no_grad():
        logprobs = torch.log_softmax(candidate.model(ids).logits[0].float(), dim=-1)
    return sum(logprobs[len(context) - 1 + t, token].item()
               for t, token in enumerate(continuation))


def test_batched_scores_equal_unbatched_reference(candidate):
    scores = candidate.score_choices(PROMPTS, CHOICES)
    for prompt, row in zip(PROMPTS, scores, strict=True):
        expected = [manual_logprob(candidate, prompt, c) for c in ("positive", "negative")]
        assert row == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(("share_prefix", "batch_tokens"),
                         [(True, None), (True, 40), (False, None)],
                         ids=["cached-contexts", "small-batches", "whole-sequences"])
def test_multi_token_choices_of_different_lengths(candidate, share_prefix, batch_tokens):
    choices = [("very good indeed", "bad", "not good at all")] * len(PROMPTS)
    candidate.share_prefix = share_prefix
    if batch_tokens:  # continuations split over several forward passes
        candidate.batch_tokens = batch_tokens
    scores = candidate.score_choices(PROMPTS, choices)
    for prompt, row in zip(PROMPTS, scores, strict=True):
        expected = [manual_logprob(candidate, prompt, c) for c in choices[0]]
        assert row == pytest.approx(expected, abs=1e-4)


def test_prefix_cache_changes_nothing(candidate, monkeypatch):
    cached_scores = candidate.score_choices(PROMPTS, CHOICES)
    cached_text = candidate.generate(PROMPTS, max_new_tokens=6)
    monkeypatch.setattr(scoring_module, "MIN_SHARED_PREFIX", 10**9)
    assert np.allclose(candidate.score_choices(PROMPTS, CHOICES), cached_scores, atol=1e-4)
    assert candidate.generate(PROMPTS, max_new_tokens=6) == cached_text


def test_small_batches_give_the_same_answers(candidate, monkeypatch):
    expected = candidate.score_choices(PROMPTS, CHOICES)
    monkeypatch.setattr(candidate, "batch_tokens", 1)  # one row per batch
    assert np.allclose(candidate.score_choices(PROMPTS, CHOICES), expected, atol=1e-4)


def test_generation_is_greedy_and_per_prompt(candidate, no_prefix_cache):
    batched = candidate.generate(PROMPTS, max_new_tokens=5)
    alone = [candidate.generate([p], max_new_tokens=5)[0] for p in PROMPTS]
    assert batched == alone
    assert any(batched)  # the tiny model does produce text


def test_rewrite_changes_what_the_model_sees(tiny_lm):
    model, tokenizer = tiny_lm
    extra = [{"role": "user", "content": "example"}, {"role": "assistant", "content": "positive"}]
    plain = LMCandidate(model, tokenizer)
    shot = LMCandidate(model, tokenizer, rewrite=lambda m: [m[0], *extra, *m[1:]])
    assert len(shot.prompt_ids(PROMPTS[0])) > len(plain.prompt_ids(PROMPTS[0]))
    assert shot.score_choices(PROMPTS[:1], CHOICES[:1]) != plain.score_choices(
        PROMPTS[:1], CHOICES[:1])


def test_empty_choice_is_an_error(candidate):
    with pytest.raises(ValueError, match="tokenizes to nothing"):
        candidate.score_choices(PROMPTS[:1], [("positive", "")])


def test_only_a_candidate_given_a_rewrite_declares_that_it_rewrites_prompts(tiny_lm):
    shout = LMCandidate(*tiny_lm, rewrite=lambda m: [*m[:-1], {**m[-1], "content": "HEY"}])
    assert isinstance(shout, RewritesPrompts)
    assert shout.rewrite_prompts(PROMPTS[:1])[0][-1]["content"] == "HEY"
    assert not isinstance(LMCandidate(*tiny_lm), RewritesPrompts)
    assert not isinstance(LMCandidate(*tiny_lm), CarriesRewardModel)
