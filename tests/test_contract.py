"""Every registered approach meets the same contract on a tiny model (harness.testing)."""

import pytest

from harness.core.plugins import approaches, tasks
from harness.testing import check_approach


def task_for(name: str) -> str:
    """The first built-in task the approach can run on (retrieval needs documents,
    preference training needs chosen/rejected pairs)."""
    for task in ("sentiment", "kb-qa", "prefs"):
        if approaches().get(name)().unsupported_reason(tasks().get(task)().load(0)) is None:
            return task
    raise AssertionError(f"{name} runs on no built-in task")


SMOKE_OVERRIDES = {"rlhf": ["rlhf.rl_prompts=4"]}
"""Keeps the slowest stages to a few steps (RL samples replies at every step)."""


def contract_params() -> list:
    """Every approach; those that train or build an index (seconds each, not a prompting
    approach) are marked slow, so ``make test-fast`` checks the prompting ones."""
    return [pytest.param(name, marks=() if approaches().get(name).kind == "prompting"
                         else pytest.mark.slow) for name in approaches().names()]


@pytest.mark.parametrize("name", contract_params())
def test_approach_contract(name, tiny_model_dir, tmp_path):
    info = check_approach(name, tiny_model_dir, tmp_path, task=task_for(name),
                          overrides=SMOKE_OVERRIDES.get(name, []))
    assert info["prepare_seconds"] >= 0


@pytest.mark.slow  # trains
def test_composition_meets_the_contract(tiny_model_dir, tmp_path):
    info = check_approach("lora+rag", tiny_model_dir, tmp_path, task="kb-qa",
                          overrides=["rag.retriever=bm25", "lora.max_length=1024"])
    assert info["trainable_params"] > 0 and info["index_bytes"] > 0


@pytest.mark.slow  # trains
@pytest.mark.parametrize("config", ["ia3.json", "loha.json", "prefix_tuning.json"])
def test_shipped_peft_configs_meet_the_contract(config, tiny_model_dir, tmp_path):
    from plugins.peft_methods import CONFIG_EXAMPLES

    info = check_approach("peft", tiny_model_dir, tmp_path,
                          overrides=[f"peft.config={CONFIG_EXAMPLES / config}"])
    assert 0 < info["trainable_percent"] < 100
