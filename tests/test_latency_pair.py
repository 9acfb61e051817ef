"""Interleaved timing of two candidates (``harness.measure.latency.measure_pair``)."""

from __future__ import annotations

from harness.measure.latency import measure, measure_pair
from harness.models.lm_candidate import LMCandidate


class Recorded(LMCandidate):
    """The tiny model as a candidate that writes its name into a shared log at each call."""

    def __init__(self, model, tokenizer, name: str, log: list[str]) -> None:
        super().__init__(model, tokenizer)
        self.name, self.log = name, log

    def generate(self, prompts, max_new_tokens):
        self.log.append(self.name)
        return super().generate(prompts, max_new_tokens)


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
    timed = log[4:]  # after two warm-up calls each; each timed item is 2 calls per side
    rounds = [timed[i:i + 4] for i in range(0, 4 * (len(requests) + len(decode)), 4)]
    assert rounds[0] == ["a", "a", "b", "b"] and rounds[1] == ["b", "b", "a", "a"]
    assert [r[0] for r in rounds] == ["a", "b", "a", "b", "a", "b"]  # ABBA, decode too
    assert log[-2:] == ["a", "b"]  # the batched call, once each
