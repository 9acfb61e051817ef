"""Decode time per token on a fixed number of new tokens, end-of-sequence ignored
(``harness.measure.latency``; ``Candidate.generate(..., ignore_eos=True)``)."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import pytest
import torch

from harness.core.approach import Candidate
from harness.core.capabilities import decodes_fixed_length
from harness.measure.latency import measure
from harness.models.lm_candidate import LMCandidate
from harness.retrieval.candidate import RetrievalCandidate
from harness.tasks.base import Message, Passage
from plugins.calibration import CalibratedCandidate
from plugins.controls import SleepingCandidate

DECODE = ("Describe a quiet morning.", "Explain bread.")
DECODE_TOKENS = 5
REQUESTS = [[{"role": "user", "content": f"review {i}: fine"}] for i in range(2)]
CORPUS = [Passage("p1", "Bread", "Dough rises because yeast makes gas."),
          Passage("p2", "Mornings", "A quiet morning in a small town starts with birds.")]


@pytest.fixture(scope="module")
def terse_lm(tiny_lm):
    """A private copy of the tiny model whose most likely next token is always EOS (a bias
    on its output layer), with a counter of the tokens it predicts (output-layer calls: one
    per generated token)."""
    model, tokenizer = tiny_lm
    terse = copy.deepcopy(model)
    old = terse.lm_head
    head = torch.nn.Linear(old.in_features, old.out_features, bias=True)
    with torch.no_grad():
        head.weight.copy_(old.weight)
        head.bias.zero_()
        head.bias[tokenizer.eos_token_id] = 1e4
    terse.lm_head = head
    steps: list[int] = []
    head.register_forward_hook(lambda module, inputs, output: steps.append(1))
    return terse, tokenizer, steps


class Legacy(Candidate):
    """A plugin candidate written before ``ignore_eos``: ``generate(prompts, max_new_tokens)``
    (it answers through an LMCandidate it holds)."""

    def __init__(self, model, tokenizer) -> None:
        super().__init__()
        self.inner = LMCandidate(model, tokenizer)
        self.tokenizer = tokenizer
        self.asked: list[int] = []

    def generate(self, prompts: Sequence[Sequence[Message]], max_new_tokens: int = 32
                 ) -> list[str]:
        self.asked.append(max_new_tokens)
        return self.inner.generate(prompts, max_new_tokens)

    def score_choices(self, prompts, choices):
        return self.inner.score_choices(prompts, choices)


def _rag(model, tokenizer, tmp_path, inner=None) -> RetrievalCandidate:
    candidate = RetrievalCandidate(
        inner or LMCandidate(model, tokenizer), retriever_kind="bm25", top_k=1, chunk_size=50,
        chunk_overlap=10, embedder="all-MiniLM-L6-v2", cache_dir=tmp_path)
    candidate.use_corpus(CORPUS)
    return candidate


def test_the_terse_model_stops_at_once_unless_asked_for_a_fixed_length(terse_lm):
    model, tokenizer, steps = terse_lm
    candidate = LMCandidate(model, tokenizer)
    prompt = [{"role": "user", "content": DECODE[0]}]
    steps.clear()
    assert candidate.generate([prompt], 8) == [""] and len(steps) == 1  # EOS first
    steps.clear()
    assert candidate.generate([prompt], 8, ignore_eos=True)[0] != ""
    assert len(steps) == 8


@pytest.mark.parametrize("kind", ["lm", "calibrated", "sleeping", "rag"])
def test_every_lm_based_candidate_gets_a_decode_figure_on_exactly_the_fixed_count(
        terse_lm, tmp_path, kind):
    model, tokenizer, steps = terse_lm
    candidate = {
        "lm": lambda: LMCandidate(model, tokenizer),
        "calibrated": lambda: CalibratedCandidate(model, tokenizer),
        "sleeping": lambda: SleepingCandidate(model, tokenizer, 0.0),
        "rag": lambda: _rag(model, tokenizer, tmp_path),
    }[kind]()
    assert decodes_fixed_length(candidate)
    calls: list[tuple[int, int]] = []  # (max_new_tokens, tokens predicted) of each call
    generate = candidate.generate

    def counted(prompts, max_new_tokens=32, *, ignore_eos=False):
        before = len(steps)
        replies = generate(prompts, max_new_tokens, ignore_eos=ignore_eos)
        calls.append((max_new_tokens, len(steps) - before))
        return replies

    candidate.generate = counted  # the instance's own generate, run in full
    sample = measure(candidate, REQUESTS, 4, decode_prompts=DECODE,
                     decode_tokens=DECODE_TOKENS)

    assert sample.end_to_end_tokens == [0, 0]  # the task's requests: EOS at once, as before
    assert sample.decode_fixed_length is True and sample.decode_tokens == DECODE_TOKENS
    assert len(sample.decode_per_token) == len(DECODE) and sample.decode_items == [0, 1]
    assert all(math.isfinite(t) for t in sample.decode_per_token)
    assert len(sample.decode_generated) == len(DECODE)
    decoding = [predicted for asked, predicted in calls if asked == DECODE_TOKENS]
    assert decoding == [DECODE_TOKENS] * len(DECODE)  # exactly the fixed count, each prompt


def test_a_legacy_candidate_falls_back_to_the_tokens_it_produces(tiny_lm, terse_lm):
    chatty = Legacy(*tiny_lm)  # the random tiny model runs on to the limit
    assert not decodes_fixed_length(chatty)
    sample = measure(chatty, REQUESTS, 4, decode_prompts=DECODE, decode_tokens=DECODE_TOKENS)
    assert sample.decode_fixed_length is False
    assert len(sample.decode_per_token) == len(DECODE)  # long enough replies are timed
    assert all(t > 0 for t in sample.decode_per_token)
    assert all(n >= 2 for n in sample.decode_generated)

    model, tokenizer, _ = terse_lm
    terse = Legacy(model, tokenizer)  # fallback's limit: a reply of no tokens has no figure
    sample = measure(terse, REQUESTS, 4, decode_prompts=DECODE, decode_tokens=DECODE_TOKENS)
    assert sample.decode_fixed_length is False
    assert sample.decode_per_token == [] and sample.decode_generated == [0, 0]
    assert DECODE_TOKENS in terse.asked


def test_a_wrapper_passes_ignore_eos_on_only_if_its_inner_candidate_takes_it(
        tiny_lm, tmp_path):
    model, tokenizer = tiny_lm
    over_legacy = _rag(model, tokenizer, tmp_path, inner=Legacy(model, tokenizer))
    assert not decodes_fixed_length(over_legacy)
    sample = measure(over_legacy, REQUESTS, 4, decode_prompts=DECODE[:1],
                     decode_tokens=DECODE_TOKENS)  # no ignore_eos reaches the inner generate
    assert sample.decode_fixed_length is False and len(sample.decode_generated) == 1
    assert decodes_fixed_length(_rag(model, tokenizer, tmp_path / "lm"))


def test_decode_needs_at_least_two_tokens(tiny_lm):
    with pytest.raises(ValueError, match="at least 2"):
        measure(LMCandidate(*tiny_lm), REQUESTS, 4, decode_prompts=DECODE, decode_tokens=1)
