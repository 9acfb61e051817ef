"""The forgetting suite reuses the base model's probe scores for a candidate that scores as
the base by construction (``LMCandidate.scores_as``) and for no other."""

from __future__ import annotations

import copy

import torch

from harness.core.plugins import tasks
from harness.measure.evaluate import score_by_choice
from harness.models.hardware import Precision
from harness.models.lm_candidate import LMCandidate
from plugins.calibration import CalibratedCandidate


def demonstrations(messages):
    return [{"role": "user", "content": "Say yes."}, {"role": "assistant", "content": "yes"},
            *messages]


def on(candidate, precision="fp32"):
    candidate.set_precision(Precision(precision, torch.device("cpu")))
    return candidate


def other_precision(candidate):
    """``candidate`` as if set to bf16 (``set_precision`` would store the shared tiny model's
    weights in bf16, under every later test that uses it)."""
    candidate.precision = Precision("bf16", torch.device("cpu"))
    return candidate


def test_zero_shot_and_the_weights_of_few_shot_score_as_the_base(tiny_lm):
    model, tokenizer = tiny_lm
    base = on(LMCandidate(model, tokenizer))
    zero_shot = on(LMCandidate(model, tokenizer))
    weights = on(LMCandidate(model, tokenizer, rewrite=demonstrations)).without_rewriting()
    assert zero_shot.scores_as(base) and weights.scores_as(base)
    probes = tasks().get("general")().load(0).eval[:12]
    def scored(candidate):
        return [(r["prediction"], r["extra"]["choice_logprobs"])
                for r in score_by_choice(candidate, probes)]

    expected = scored(base)
    for candidate in (zero_shot, weights):  # what reusing stands for: the very same scores
        assert scored(candidate) == expected


def test_anything_that_scores_otherwise_is_scored(tiny_lm):
    model, tokenizer = tiny_lm
    base = on(LMCandidate(model, tokenizer))
    others = {
        "deployed few-shot": on(LMCandidate(model, tokenizer, rewrite=demonstrations)),
        "calibrated": on(CalibratedCandidate(model, tokenizer)),
        "other weights": on(LMCandidate(copy.deepcopy(model), tokenizer)),
        "other precision": other_precision(LMCandidate(model, tokenizer)),
        "no prefix sharing": on(LMCandidate(model, tokenizer, share_prefix=False)),
    }
    for label, candidate in others.items():
        assert not candidate.scores_as(base), label
    assert not base.scores_as(object())
