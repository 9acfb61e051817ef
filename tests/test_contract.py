"""Every registered approach meets the same contract on a tiny model (harness.testing)."""

import pytest

from harness.plugins import approaches
from harness.testing import check_approach


@pytest.mark.parametrize("name", approaches().names())
def test_approach_contract(name, tiny_model_dir, tmp_path):
    info = check_approach(name, tiny_model_dir, tmp_path)
    assert info["prepare_seconds"] >= 0


@pytest.mark.parametrize("config", ["ia3.json", "loha.json", "prefix_tuning.json"])
def test_shipped_peft_configs_meet_the_contract(config, tiny_model_dir, tmp_path):
    from plugins.peft_methods import CONFIG_EXAMPLES

    info = check_approach("peft", tiny_model_dir, tmp_path,
                          overrides=[f"peft.config={CONFIG_EXAMPLES / config}"])
    assert 0 < info["trainable_percent"] < 100
