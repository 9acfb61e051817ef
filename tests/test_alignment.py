"""DPO and RLHF on a tiny model: they learn the preference, compose, and refuse what they can't."""

import json
import os
import random
from contextlib import contextmanager

import pytest
import torch

from harness.core.capabilities import CarriesRewardModel
from harness.runner.session import ExperimentSession, SessionOptions
from harness.train.preference import reward_model_from, reward_scores

pytestmark = pytest.mark.slow  # every test trains a policy (seconds each): not in make test-fast


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory):
    """Polite, correct replies preferred to rude, wrong ones (prompt/chosen/rejected JSONL)."""
    path = tmp_path_factory.mktemp("prefs") / "pairs.jsonl"
    draw = random.Random(0)
    with path.open("w") as out:
        for i in range(80):
            price = draw.randint(5, 99)
            out.write(json.dumps({
                "prompt": f"How much is plan {i}?",
                "chosen": f"Plan {i} costs ${price} a month.",
                "rejected": f"Figure it out yourself, it is ${price + 3}.",
            }) + "\n")
    return path


@contextmanager
def prepared(name, task, model_dir, workdir, *overrides):
    """The candidate of ``name`` prepared by a smoke-budget session, cached under workdir."""
    previous = os.environ.get("TUNEBENCH_CACHE")
    os.environ["TUNEBENCH_CACHE"] = str(workdir / "cache")
    session = ExperimentSession(SessionOptions(
        approaches=[name], task=str(task), model=str(model_dir), budget="smoke",
        results=workdir / "results.db", overrides=list(overrides)))
    try:
        with session.open_run(name) as run:
            yield run.candidate, session
    finally:
        session.close()
        if previous is None:
            os.environ.pop("TUNEBENCH_CACHE", None)
        else:
            os.environ["TUNEBENCH_CACHE"] = previous


def margins(candidate, examples):
    scores = candidate.score_choices([e.messages for e in examples],
                                     [(e.answer, e.rejected) for e in examples])
    return [chosen - rejected for chosen, rejected in scores]


def test_dpo_raises_the_chosen_reply_over_the_rejected(pairs_file, tiny_model_dir, tmp_path):
    with prepared("zero-shot", pairs_file, tiny_model_dir, tmp_path) as (base, session):
        held_out = session.task_data().eval
        before = sum(margins(base, held_out)) / len(held_out)
    with prepared("dpo", pairs_file, tiny_model_dir, tmp_path, "dpo.learning_rate=5e-3",
                  "dpo.epochs=3") as (dpo, session):
        after = sum(margins(dpo, held_out)) / len(held_out)
        curves = {row[0] for row in session.store.query("SELECT DISTINCT name FROM curves")}
    assert after > before + 1.0, (before, after)
    assert {"loss", "reward_margin", "reward_accuracy"} <= curves


def test_composed_dpo_starts_from_and_is_anchored_to_the_inner_candidate(
        pairs_file, tiny_model_dir, tmp_path):
    # With a zero learning rate DPO leaves its starting point unchanged, so the composed
    # candidate must answer exactly like the supervised one, and solo DPO like the base model.
    with prepared("lora", pairs_file, tiny_model_dir, tmp_path, "lora.learning_rate=5e-3",
                  "lora.epochs=2") as (lora, session):
        examples = session.task_data().eval
        sft = margins(lora, examples)
    frozen = ("dpo.learning_rate=0", "dpo.max_steps=1")
    with prepared("lora+dpo", pairs_file, tiny_model_dir, tmp_path, "lora.learning_rate=5e-3",
                  "lora.epochs=2", *frozen) as (composed, _):
        assert composed.info["trainable_params"] == lora.info["trainable_params"]
        assert margins(composed, examples) == pytest.approx(sft, abs=1e-4)
    with prepared("zero-shot", pairs_file, tiny_model_dir, tmp_path) as (base, _):
        untouched = margins(base, examples)
    with prepared("dpo", pairs_file, tiny_model_dir, tmp_path, *frozen) as (dpo, _):
        assert margins(dpo, examples) == pytest.approx(untouched, abs=1e-4)
    assert sft != pytest.approx(untouched, abs=1e-2)  # the two starting points differ


def test_reward_model_shares_the_backbone_and_starts_indifferent(tiny_lm):
    model, tokenizer = tiny_lm
    reward_model = reward_model_from(model)
    ids = tokenizer("plan costs", return_tensors="pt").input_ids
    with torch.no_grad():
        hidden = model.base_model(ids).last_hidden_state
        same = reward_model.base_model(ids).last_hidden_state
    assert torch.equal(hidden, same)
    prompt = [{"role": "user", "content": "How much?"}]
    assert reward_scores(reward_model, tokenizer, [prompt, prompt], ["$5.", "Go away."]) == [0, 0]


def test_rlhf_trains_a_reward_model_then_the_policy(pairs_file, tiny_model_dir, tmp_path):
    with prepared("rlhf", pairs_file, tiny_model_dir, tmp_path, "rlhf.reward_epochs=4",
                  "rlhf.reward_learning_rate=3e-3", "rlhf.rl_prompts=4") as (rlhf, session):
        pairs = session.task_data().eval
        prompts = [list(e.messages) for e in pairs]
        chosen = rlhf.rewards(prompts, [e.answer for e in pairs])
        rejected = rlhf.rewards(prompts, [e.rejected for e in pairs])
        curves = {row[0] for row in session.store.query("SELECT DISTINCT name FROM curves")}
        info = rlhf.info
    assert isinstance(rlhf, CarriesRewardModel)
    assert sum(c > r for c, r in zip(chosen, rejected, strict=True)) / len(pairs) >= 0.9
    assert info["reward_model_validation_accuracy"] >= 0.9
    assert info["rl_steps"] == 2  # 4 prompts x 4 replies / batches of 8
    assert {"reward_model_loss", "reward_model_accuracy", "reward", "kl"} <= curves


def test_preference_approaches_need_pairs(tiny_model_dir, tmp_path):
    with (pytest.raises(ValueError, match="no preference pairs"),
          prepared("dpo", "sentiment", tiny_model_dir, tmp_path)):
        pass


def test_dpo_does_not_build_on_a_prompt_rewriting_candidate(pairs_file, tiny_model_dir,
                                                            tmp_path):
    with (pytest.raises(ValueError, match="builds on weight-updating candidates"),
          prepared("few-shot+dpo", pairs_file, tiny_model_dir, tmp_path)):
        pass
