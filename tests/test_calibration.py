"""Contextual calibration of the prompting approaches (Zhao et al., 2021, "Calibrate Before
Use"): the content-free prompt, the arithmetic, and the candidate on the tiny model."""

import copy
import json
import math
from collections import Counter
from pathlib import Path

import pytest
import torch

import plugins.calibration as calibration
from harness.core.approach import BUDGETS, RunContext
from harness.core.overrides import parse_overrides
from harness.core.plugins import approaches
from harness.models.lm_candidate import LMCandidate
from harness.tasks.base import Example, TaskData
from harness.tasks.sentiment.task import SentimentTask
from harness.testing import check_approach
from plugins.calibration import (
    CalibratedCandidate,
    calibrate,
    content_free_logprobs,
    content_free_prompt,
    label_key,
    replace_input,
)
from plugins.prompting import FewShot, FewShotConfig, ZeroShot, ZeroShotConfig
from tests.conftest import query_db

INSTRUCTION = "Classify the sentiment of the review. Answer with one word."
MULTI_TOKEN = ("very good indeed", "bad", "not good at all")


@pytest.fixture(scope="module")
def sentiment() -> TaskData:
    return SentimentTask().load(0).subset(32, 16, 40)


def context(task: TaskData, tiny_lm, tmp_path: Path) -> RunContext:
    return RunContext(
        task=task, load_base=lambda **_: tiny_lm, model_name="tiny", model_version="0",
        budget=BUDGETS["smoke"], seed=0, device=torch.device("cpu"), run_dir=tmp_path,
        shared_base=lambda: tiny_lm,
    )


def prompts_and_choices(items):
    return [e.messages for e in items], [e.choices for e in items]


def predicted(scores, items) -> Counter:
    return Counter(e.choices[max(range(len(row)), key=row.__getitem__)]
                   for e, row in zip(items, scores, strict=True))


# The content-free prompt


def test_the_input_is_replaced_and_the_instruction_and_field_label_kept():
    content = f"{INSTRUCTION}\n\nReview: The food was great."
    assert replace_input(content, "N/A") == f"{INSTRUCTION}\n\nReview: N/A"
    assert replace_input(content, "") == f"{INSTRUCTION}\n\nReview: "
    assert replace_input("Question: What is 2+2?", "[MASK]") == "Question: [MASK]"
    assert replace_input("the food was great", "N/A") == "N/A"


def test_content_free_prompt_keeps_every_other_message():
    system = {"role": "system", "content": "Be brief."}
    shot = {"role": "user", "content": f"{INSTRUCTION}\n\nReview: loved it"}
    answer = {"role": "assistant", "content": "positive"}
    last = {"role": "user", "content": f"{INSTRUCTION}\n\nReview: awful"}
    prompt = content_free_prompt([system, shot, answer, last], "N/A")
    assert prompt[:3] == [system, shot, answer]
    assert prompt[3] == {"role": "user", "content": f"{INSTRUCTION}\n\nReview: N/A"}
    assert last["content"].endswith("awful")  # the item itself is left alone


# The arithmetic


def test_dividing_by_the_content_free_probabilities():
    log_p_cf = [math.log(0.8), math.log(0.2)]
    assert [math.exp(s) for s in calibrate(log_p_cf, log_p_cf)] == pytest.approx([0.5, 0.5])
    # p / p_cf = (0.5/0.8, 0.5/0.2) renormalised; summed log-likelihoods need not be normalised
    raw = [math.log(0.5) - 7.0, math.log(0.5) - 7.0]
    assert [math.exp(s) for s in calibrate(raw, log_p_cf)] == pytest.approx([0.2, 0.8])


def test_content_free_probabilities_are_averaged_after_normalising():
    rows = [[math.log(0.9) - 3, math.log(0.1) - 3], [math.log(0.5), math.log(0.5)]]
    assert [math.exp(p) for p in content_free_logprobs(rows)] == pytest.approx([0.7, 0.3])


# The candidate on the tiny model


def test_calibrated_distribution_is_uniform_on_the_content_free_input(tiny_lm, sentiment):
    """Zhao et al.'s defining property, with the demonstrations of a rewrite and with
    multi-token choices: on the content-free input itself every choice is equally likely."""
    shots = [m for e in sentiment.train[:2]
             for m in (*e.messages[1:], {"role": "assistant", "content": e.answer})]
    candidate = CalibratedCandidate(*tiny_lm, rewrite=lambda m: [m[0], *shots, *m[1:]],
                                    content_free=("N/A",))
    item = sentiment.eval[0]
    for choices in (item.choices, MULTI_TOKEN):
        scores = candidate.score_choices([content_free_prompt(item.messages, "N/A")], [choices])
        raw = LMCandidate.score_choices(candidate, [item.messages], [choices])[0]
        assert max(raw) - min(raw) > 0.1  # the uncalibrated model does prefer some choice
        assert [math.exp(s) for s in scores[0]] == pytest.approx([1 / len(choices)] * len(choices),
                                                                 abs=1e-5)


def test_estimate_averages_the_three_content_free_inputs_in_the_same_prompt(tiny_lm, sentiment):
    shots = [m for e in sentiment.train[:2]
             for m in (*e.messages[1:], {"role": "assistant", "content": e.answer})]

    def rewrite(messages):
        return [messages[0], *shots, *messages[1:]]

    candidate = CalibratedCandidate(*tiny_lm, rewrite=rewrite)
    item = sentiment.eval[0]
    candidate.score_choices([item.messages], [item.choices])
    plain = LMCandidate(*tiny_lm, rewrite=rewrite)
    inputs = ("N/A", "[MASK]", "")
    rows = plain.score_choices([content_free_prompt(item.messages, t) for t in inputs],
                               [item.choices] * 3)
    expected = [sum(math.exp(r[j]) / sum(map(math.exp, r)) for r in rows) / 3 for j in range(2)]
    recorded = candidate.info["calibration"][label_key(item.choices)]
    assert recorded == pytest.approx(expected, rel=1e-4)
    assert sum(recorded) == pytest.approx(1.0)


@pytest.mark.slow  # scores the eval set with and without calibration (seconds)
def test_calibration_moves_a_biased_few_shot_candidate_towards_balance(tiny_lm, sentiment,
                                                                      tmp_path):
    """Demonstrations that are all ``positive`` (the label set of the training data offers no
    other) push the candidate towards it; calibration predicts fewer of it."""
    positive_only = TaskData(name="sentiment", labels=sentiment.labels, eval=[],
                             train=[e for e in sentiment.train if e.answer == "positive"],
                             validation=[])
    assert {e.answer for e in positive_only.train} == {"positive"}
    ctx = context(positive_only, tiny_lm, tmp_path)
    items = sentiment.eval
    counts = {}
    for calibrated in (False, True):
        candidate = FewShot(FewShotConfig(k=4, calibrate=calibrated)).prepare(ctx)
        counts[calibrated] = predicted(candidate.score_choices(*prompts_and_choices(items)), items)
    majority, biased = counts[False].most_common(1)[0]
    assert biased >= 0.75 * len(items), counts  # the candidate really is biased
    assert counts[True][majority] < biased and len(counts[True]) == 2, counts


def test_without_calibration_scores_are_bit_identical_to_before(tiny_lm, sentiment, tmp_path):
    ctx = context(sentiment, tiny_lm, tmp_path)
    prompts, choices = prompts_and_choices(sentiment.eval[:16])
    zero = ZeroShot(ZeroShotConfig()).prepare(ctx)
    assert type(zero) is LMCandidate and "calibration" not in zero.info
    assert zero.score_choices(prompts, choices) == LMCandidate(*tiny_lm).score_choices(
        prompts, choices)
    few = FewShot(FewShotConfig(k=2, draws=1)).prepare(ctx)  # one draw: few-shot as it was
    assert type(few) is LMCandidate and "calibration" not in few.info
    shots = {e.id: e for e in sentiment.train}
    demonstration = [m for i in few.info["demonstration_ids"]
                     for m in (*shots[i].messages[1:], {"role": "assistant",
                                                        "content": shots[i].answer})]
    reference = LMCandidate(*tiny_lm, rewrite=lambda m: [m[0], *demonstration, *m[1:]])
    assert few.score_choices(prompts, choices) == reference.score_choices(prompts, choices)
    assert few.generate(prompts[:2], 4) == reference.generate(prompts[:2], 4)


def test_one_estimate_per_set_of_choices(tiny_lm, sentiment, tmp_path, monkeypatch):
    built = []
    real = calibration.content_free_prompt
    monkeypatch.setattr(calibration, "content_free_prompt",
                        lambda messages, text: built.append(text) or real(messages, text))
    candidate = FewShot(FewShotConfig(k=2, calibrate=True)).prepare(
        context(sentiment, tiny_lm, tmp_path))
    assert built == ["N/A", "[MASK]", ""]  # the task's label set, at prepare (in the store)
    assert list(candidate.info["calibration"]) == [label_key(sentiment.labels)]
    for start in (0, 16, 32):  # like the suites: items in chunks
        candidate.score_choices(*prompts_and_choices(sentiment.eval[start : start + 16]))
    assert len(built) == 3
    other = [Example(id=f"q{i}", messages=({"role": "user", "content": f"Question: is {i} odd?"},),
                     answer="yes", choices=choices)
             for i, choices in enumerate([("yes", "no"), MULTI_TOKEN, ("yes", "no")])]
    scores = candidate.score_choices(*prompts_and_choices(other))
    assert len(built) == 9 and len(candidate.info["calibration"]) == 3
    assert all(math.fsum(map(math.exp, row)) == pytest.approx(1.0) for row in scores)


def test_a_copy_with_another_rewrite_does_not_share_the_estimates(tiny_lm, sentiment):
    """A shallow copy whose prompts are built differently (a view without demonstrations,
    as ``LMCandidate.without_rewriting`` makes) estimates afresh and leaves the original's
    estimates and info alone."""
    shots = [m for e in sentiment.train[:2]
             for m in (*e.messages[1:], {"role": "assistant", "content": e.answer})]
    few = CalibratedCandidate(*tiny_lm, rewrite=lambda m: [m[0], *shots, *m[1:]])
    prompts, choices = prompts_and_choices(sentiment.eval[:4])
    few.score_choices(prompts, choices)
    estimate, info = dict(few.log_p_cf), json.dumps(few.info)
    plain = copy.copy(few)
    plain.rewrite, plain.info = list, dict(few.info)
    assert plain.score_choices(prompts, choices) == CalibratedCandidate(*tiny_lm).score_choices(
        prompts, choices)
    assert plain.log_p_cf != estimate
    assert few.log_p_cf == estimate and json.dumps(few.info) == info


def test_a_single_choice_keeps_its_log_likelihood_and_generation_is_unchanged(tiny_lm, sentiment):
    calibrated, plain = CalibratedCandidate(*tiny_lm), LMCandidate(*tiny_lm)
    prompts = [e.messages for e in sentiment.eval[:3]]
    replies = [[e.answer] for e in sentiment.eval[:3]]
    assert calibrated.score_choices(prompts, replies) == plain.score_choices(prompts, replies)
    assert calibrated.info["calibration"] == {}
    assert calibrated.generate(prompts, 4) == plain.generate(prompts, 4)


def test_the_default_keeps_the_recorded_config_and_its_hash():
    assert FewShot(FewShotConfig(k=2, draws=1)).config_dict() == {"k": 2, "balanced": True}
    assert FewShot(FewShotConfig(k=2)).config_dict() == {"k": 2, "balanced": True, "draws": 8}
    assert ZeroShot().config_dict() == {}
    assert FewShot(FewShotConfig(calibrate=True)).config_dict()["calibrate"] is True
    assert ZeroShot(ZeroShotConfig(calibrate=True)).config_dict() == {"calibrate": True}


def test_the_option_is_set_on_the_command_line_and_recorded(tiny_model_dir, tmp_path):
    assert parse_overrides(["zero-shot.calibrate=true", "few-shot.calibrate=yes"],
                           approaches()) == {"zero-shot": {"calibrate": True},
                                             "few-shot": {"calibrate": True}}
    info = check_approach("zero-shot", tiny_model_dir, tmp_path,
                          overrides=["zero-shot.calibrate=true"])
    stored = json.loads(query_db(tmp_path / "results.db", "SELECT info_json FROM runs")[0][0])
    assert stored["calibration"] == info["calibration"]
    assert list(stored["calibration"]) == [label_key(("negative", "positive"))]
