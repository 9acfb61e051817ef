"""Reading the forgetting measurements together (harness.measure.forgetting), the metric
names of the probe views, and raw-text probe scoring on the tiny model."""

import pytest

from harness.measure.catalogue import BUILTIN, Catalogue
from harness.measure.evaluate import score_by_raw_choice
from harness.measure.forgetting import read_forgetting
from harness.models.lm_candidate import LMCandidate
from harness.models.raw_text import raw_loglikelihood
from harness.tasks.base import Example
from harness.tasks.general.task import INSTRUCTION, raw_context


def test_a_perplexity_rise_is_not_hidden_by_a_probe_gain():
    # the default comparison's adapters candidate: probes up, perplexity up too
    reading = read_forgetting({"forgetting_delta": (0.058, 0.02, 0.09),
                               "nll_per_token_delta": (0.30, 0.23, 0.37)})
    assert reading.forgets
    assert [f.metric for f in reading.losses] == ["nll_per_token_delta"]
    assert reading.sentence.startswith("forgets on perplexity +0.300 nats/token")
    assert "chat probes +0.058" in reading.sentence


def test_probe_losses_interference_and_no_finding():
    lost = read_forgetting({"forgetting_delta": (-0.1, -0.15, -0.05),
                            "forgetting_delta_raw": (-0.02, -0.06, 0.01),
                            "nll_per_token_delta": (0.0, -0.01, 0.01)})
    assert [f.metric for f in lost.losses] == ["forgetting_delta"]
    prompted = read_forgetting({"forgetting_delta": (0.0, 0.0, 0.0),
                                "interference_delta": (-0.094, -0.13, -0.06)})
    assert not prompted.forgets and prompted.interference is not None
    assert "prompt interference: probes through its prompts -0.094" in prompted.sentence
    fine = read_forgetting({"forgetting_delta": (0.01, -0.02, 0.04)})
    assert not fine.forgets and fine.sentence.startswith("no significant forgetting")
    assert read_forgetting({}).sentence == "not measured"


def test_view_suffixes_resolve_in_the_catalogue():
    catalogue = Catalogue(BUILTIN)
    assert catalogue.direction("acc_raw[hellaswag]") is True
    assert catalogue.direction("mcnemar_p_prompted") is None
    assert catalogue.direction("items_broken_raw") is False
    assert catalogue.direction("exact_match_raw,strict-match[gsm8k]") is True
    assert catalogue.get("forgetting_delta_raw").name == "forgetting_delta_raw"
    assert catalogue.get("interference_delta[arithmetic]").name == "interference_delta"
    assert "made_up_raw" not in catalogue


def test_raw_context_is_plain_question_answer_text():
    probe = Example("p", ({"role": "user", "content": f"Question: What is 2 + 3?\n{INSTRUCTION}"},),
                    "5", ("5", "6", "7", "8"))
    assert raw_context(probe) == "Question: What is 2 + 3?\nAnswer:"


def test_raw_choice_scores_are_the_plain_text_likelihoods(tiny_lm):
    model, tokenizer = tiny_lm
    candidate = LMCandidate(model, tokenizer)
    items = [Example(f"q{i}", ({"role": "user", "content": f"Question: q{i}?\n{INSTRUCTION}"},),
                     "red", ("red", "blue")) for i in range(3)]
    rows = score_by_raw_choice(candidate, items, raw_context)
    direct = raw_loglikelihood(candidate, [("Question: q1?\nAnswer:", " blue")])[0][0]
    assert rows[1]["extra"]["choice_logprobs"]["blue"] == pytest.approx(direct)
    for row in rows:
        logprobs = row["extra"]["choice_logprobs"]
        assert row["prediction"] == max(logprobs, key=logprobs.get)
        assert row["correct"] == (row["prediction"] == "red")
    # no chat template: the score differs from the chat-mode score of the same choice
    chat = candidate.score_choices([items[1].messages], [items[1].choices])[0][1]
    assert chat != pytest.approx(direct)


def test_without_rewriting_keeps_the_weights_and_drops_the_prompts(tiny_lm):
    model, tokenizer = tiny_lm
    plain = LMCandidate(model, tokenizer)
    assert plain.without_rewriting() is plain
    shots = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]
    few = LMCandidate(model, tokenizer, rewrite=lambda messages: [*shots, *messages])
    stripped = few.without_rewriting()
    assert stripped.model is model and not hasattr(stripped, "rewrite_prompts")
    assert hasattr(few, "rewrite_prompts")  # the original is untouched
    prompt = [{"role": "user", "content": "What is 2 + 3?"}]
    assert stripped.prompt_ids(prompt) == plain.prompt_ids(prompt) != few.prompt_ids(prompt)
