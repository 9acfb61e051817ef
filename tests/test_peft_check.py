"""A PEFT config is checked against the base model before training (issue 16)."""

import json
import warnings

import pytest
import torch

from harness.models.loading import load_model, resolve_model
from harness.models.peft_check import PeftConfigMismatch, check_peft_config, leaf_names
from harness.runner.session import ExperimentSession, SessionOptions
from plugins.peft_methods import CONFIG_EXAMPLES, PeftFromFile

PROMPT_TUNING_3B = {
    "peft_type": "PROMPT_TUNING", "task_type": "CAUSAL_LM", "num_virtual_tokens": 8,
    "token_dim": 3072, "num_layers": 28, "num_attention_heads": 24,
    "num_transformer_submodules": 1, "prompt_tuning_init": "RANDOM",
    "base_model_name_or_path": "meta-llama/Llama-3.2-3B",
}
"""A prompt-tuning adapter_config.json written for a 3B model."""


@pytest.fixture
def fresh_model(tiny_model_dir):
    """A model of its own (PEFT changes the model it wraps)."""
    return load_model(resolve_model(str(tiny_model_dir)), torch.device("cpu"), torch.float32)[0]


def check(fields, model):
    check_peft_config(fields, "my.json", model)


@pytest.mark.parametrize("example", sorted(p.name for p in CONFIG_EXAMPLES.glob("*.json")))
def test_shipped_examples_fit(example, tiny_lm):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check(json.loads((CONFIG_EXAMPLES / example).read_text()), tiny_lm[0])


def test_config_for_a_3b_model_fails_before_training(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEBENCH_CACHE", str(tmp_path / "cache"))
    config = tmp_path / "prompt_3b.json"
    config.write_text(json.dumps(PROMPT_TUNING_3B))
    monkeypatch.setattr(PeftFromFile, "fit", lambda *a: pytest.fail("training started"))
    session = ExperimentSession(SessionOptions(
        approaches=["peft"], model=str(tiny_model_dir), budget="smoke",
        results=tmp_path / "r.db", overrides=[f"peft.config={config}"]))
    expected = (
        r"prompt_3b\.json: field 'token_dim' is 3072 but the model's hidden size is 64; "
        r"field 'num_layers' is 28 but the model has 2 layers; field 'num_attention_heads' is "
        r"24 but the model has 4 attention heads; remove token_dim, num_layers and "
        r"num_attention_heads to take them from the model$")
    with pytest.raises(PeftConfigMismatch, match=expected), session.open_run("peft"):
        pass
    session.close()
    assert not (tmp_path / "cache" / "candidates").exists()  # nothing trained, nothing cached


def test_following_the_advice_gives_a_working_adapter(fresh_model):
    from peft import get_peft_config, get_peft_model

    fitted = {k: v for k, v in PROMPT_TUNING_3B.items()
              if k not in ("token_dim", "num_layers", "num_attention_heads")}
    check(fitted, fresh_model)  # naming another base model is no error (PEFT warns)
    model = get_peft_model(fresh_model, get_peft_config(fitted))
    logits = model(input_ids=torch.tensor([[5, 6, 7]])).logits
    assert logits.shape[:2] == (1, 8 + 3)  # the virtual tokens, then the input


def test_unknown_target_module_is_named_with_modules_that_exist(tiny_lm):
    fields = {"peft_type": "LORA", "target_modules": ["q_proj", "dense", "dwn_proj"]}
    with pytest.raises(PeftConfigMismatch) as error:
        check(fields, tiny_lm[0])
    message = str(error.value)
    assert message.startswith("my.json: field 'target_modules' names 'dense', ")
    assert "'dwn_proj' (did you mean 'down_proj'?), which match no module" in message
    assert "modules it has include embed_tokens, q_proj, k_proj, v_proj, o_proj" in message
    assert "'q_proj'," not in message.partition("include")[0]  # q_proj exists


def test_lora_option_naming_no_module_stops_before_training(tiny_model_dir, tmp_path,
                                                           monkeypatch):
    from plugins.peft_methods import Lora

    monkeypatch.setenv("TUNEBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(Lora, "fit", lambda *a: pytest.fail("training started"))
    session = ExperimentSession(SessionOptions(
        approaches=["lora"], model=str(tiny_model_dir), budget="smoke",
        results=tmp_path / "r.db", overrides=["lora.target_modules=q_proj,c_attn"]))
    with pytest.raises(PeftConfigMismatch, match=r"^--set lora: field 'target_modules' names "
                       r"'c_attn'"), session.open_run("lora"):
        pass
    session.close()


@pytest.mark.parametrize(("fields", "message"), [
    ({"peft_type": "LORA", "target_modules": r".*\.attn\.(q|v)"},
     r"field 'target_modules' names '.*', which matches no module"),
    ({"peft_type": "LORA", "target_modules": "(unclosed"},
     r"'\(unclosed', not a valid regular expression"),
    ({"peft_type": "LORA", "target_modules": ["q_proj"], "modules_to_save": ["classifier"]},
     r"field 'modules_to_save' names 'classifier', which matches no module"),
    ({"peft_type": "LORA", "target_modules": ["q_proj"], "layers_to_transform": [0, 5, 27]},
     r"field 'layers_to_transform' has \[5, 27\], but the model has 2 layers \(indices 0 to 1\)"),
    ({"peft_type": "PROMPT_TUNING", "num_virtual_tokens": 4, "num_transformer_submodules": 2},
     r"field 'num_transformer_submodules' is 2 but a decoder-only model has 1"),
    ({"peft_type": "PREFIX_TUNING", "num_virtual_tokens": 4, "num_layers": 30},
     r"field 'num_layers' is 30 but the model has 2 layers; remove num_layers to take it from"),
])
def test_fields_that_do_not_fit_are_named(fields, message, tiny_lm):
    with pytest.raises(PeftConfigMismatch, match=message):
        check(fields, tiny_lm[0])


@pytest.mark.parametrize("fields", [
    {"peft_type": "PROMPT_TUNING", "num_virtual_tokens": 4},
    {"peft_type": "PREFIX_TUNING", "num_virtual_tokens": 4},
    {"peft_type": "LORA", "target_modules": ["q_proj"], "modules_to_save": ["lm_head"],
     "layers_to_transform": [1]},
    {"peft_type": "LORA", "target_modules": "all-linear"},
    {"peft_type": "LORA", "target_modules": r".*\.self_attn\.(q|v)_proj"},
], ids=["prompt-tuning", "prefix-tuning", "lora-layers", "all-linear", "regex"])
def test_an_adapter_config_saved_for_this_model_fits_it(fields, fresh_model, tmp_path):
    """PEFT fills the sizes in when it saves (prefix tuning on a grouped-query model with the
    key/value heads' sizes): its own adapter_config.json must pass."""
    from peft import get_peft_config, get_peft_model

    get_peft_model(fresh_model, get_peft_config({"task_type": "CAUSAL_LM", **fields})
                   ).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "adapter_config.json").read_text())
    if fields["peft_type"] != "LORA":
        assert saved["token_dim"] and saved["num_layers"] == 2  # the sizes were written
    check(saved, fresh_model)


def test_leaf_names_are_the_names_configs_use(tiny_lm):
    names = leaf_names(tiny_lm[0])
    assert {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
            "embed_tokens", "lm_head"} <= set(names)
    assert not any(name.isdigit() or name in ("model", "layers", "self_attn") for name in names)
