"""Interleaved timing of two candidates (``harness.measure.latency.measure_pair``)."""

from __future__ import annotations

import numpy as np
import pytest

from harness.measure.latency import (
    LatencySample,
    measure,
    measure_pair,
    paired_decode,
    paired_ratios,
)
from harness.models.lm_candidate import LMCandidate
from plugins.controls import SleepingCandidate


class Recorded(LMCandidate):
    """The tiny model as a candidate that writes its name into a shared log at each call."""

    def __init__(self, model, tokenizer, name: str, log: list[str]) -> None:
        super().__init__(model, tokenizer)
        self.name, self.log = name, log

    def generate(self, prompts, max_new_tokens, *, ignore_eos=False):
        self.log.append(self.name)
        return super().generate(prompts, max_new_tokens, ignore_eos=ignore_eos)


def test_two_candidates_are_timed_in_alternating_order_on_the_same_requests(tiny_lm):
    log: list[str] = []
    a, b = Recorded(*tiny_lm, "a", log), Recorded(*tiny_lm, "b", log)
    requests = [[{"role": "user", "content": f"review {i}: fine"}] for i in range(4)]
    decode = ("Describe a quiet morning.", "Explain bread.")
    first, second = measure_pair(a, b, requests, 4, decode_prompts=decode, decode_tokens=4)
    alone = measure(Recorded(*tiny_lm, "c", []), requests, 4, decode_prompts=decode,
                    decode_tokens=4)

    for sample in (first, second):  # each side gets what measure() alone gives
        assert len(sample.end_to_end) == len(sample.ttft) == len(alone.end_to_end) == 4
        assert sample.batched_requests == alone.batched_requests == 4
        assert sample.decode_fixed_length is alone.decode_fixed_length is True
        assert sample.decode_items == alone.decode_items == [0, 1]
    timed = log[4:]  # after two warm-up calls each; each timed item is 2 calls per side
    rounds = [timed[i:i + 4] for i in range(0, 4 * (len(requests) + len(decode)), 4)]
    assert rounds[0] == ["a", "a", "b", "b"] and rounds[1] == ["b", "b", "a", "a"]
    assert [r[0] for r in rounds] == ["a", "b", "a", "b", "a", "b"]  # ABBA, decode too
    assert log[-2:] == ["a", "b"]  # the batched call, once each


@pytest.mark.slow  # times real generation on the tiny model (seconds)
def test_a_pair_gives_ratios_of_means_over_the_same_requests_with_their_cis(tiny_lm):
    """A variant 50 ms slower per request (control-sleep's candidate) against the plain model:
    the end-to-end ratio is variant over candidate and clearly above 1; the sleep falls on
    both calls that decode time per token subtracts, so that ratio has a CI too."""
    requests = [[{"role": "user", "content": f"review {i}: fine"}] for i in range(4)]
    decode = ("Describe a quiet morning.", "Explain bread.", "Describe a garden.")
    plain, slow = LMCandidate(*tiny_lm), SleepingCandidate(*tiny_lm, sleep_seconds=0.05)
    mine, theirs = measure_pair(plain, slow, requests, 4, decode_prompts=decode,
                                decode_tokens=12)  # 11 steps: well above the timer noise
    ratios = paired_ratios(mine, theirs, seed=3)

    assert set(ratios) == {"latency", "decode"}
    for estimate in ratios.values():
        assert estimate.low <= estimate.value <= estimate.high
    latency, per_token = ratios["latency"], ratios["decode"]
    assert latency.n == len(requests) and per_token.n == len(decode)
    assert latency.value == pytest.approx(np.mean(theirs.end_to_end) / np.mean(mine.end_to_end))
    assert per_token.value == pytest.approx(
        np.mean(theirs.decode_per_token) / np.mean(mine.decode_per_token))
    assert latency.low > 1  # every resample of the pairs sees the variant slower
    assert paired_ratios(mine, theirs, seed=3) == ratios  # seeded: reproducible


def test_decode_figures_are_paired_by_prompt_when_one_side_lacks_some():
    """The fallback method drops replies too short to time; pairs are matched by prompt."""
    first = LatencySample(decode_per_token=[1.0, 2.0, 3.0], decode_items=[0, 1, 2])
    second = LatencySample(decode_per_token=[10.0, 30.0], decode_items=[0, 2])
    assert paired_decode(first, second) == ([1.0, 3.0], [10.0, 30.0])
    first.end_to_end, second.end_to_end = [1.0, 1.0], [2.0, 2.0]
    ratios = paired_ratios(first, second)
    assert ratios["decode"].value == pytest.approx(40.0 / 4.0) and ratios["decode"].n == 2
    assert ratios["latency"].value == pytest.approx(2.0)
    second.decode_per_token, second.decode_items = [], []
    assert "decode" not in paired_ratios(first, second)  # nothing timed on both sides
    second.decode_per_token, second.decode_items = [-5.0, 3.0], [0, 2]
    assert "decode" not in paired_ratios(first, second)  # a mean within the noise: no ratio
