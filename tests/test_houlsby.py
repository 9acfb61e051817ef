"""Houlsby bottleneck adapters on a tiny in-process Llama."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM

from harness.train.houlsby import (
    AdaptedLinear,
    BottleneckAdapter,
    adapter_parameter_count,
    adapter_state_dict,
    add_adapters,
    load_adapters,
    save_adapters,
)

BOTTLENECK = 8
INPUT_IDS = torch.tensor([[1, 5, 17, 42, 99, 3, 7], [2, 8, 64, 11, 0, 50, 23]])


def tiny_llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2,
    )
    return LlamaForCausalLM(config).eval()


def logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=INPUT_IDS).logits


def perturb(model: torch.nn.Module, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".adapter." in name:
                param.add_(torch.randn(param.shape, generator=generator) * 0.1)


def trainable(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def test_trainable_parameters_match_formula_and_base_is_frozen():
    model = tiny_llama()
    base_names = {n for n, _ in model.named_parameters()}
    assert add_adapters(model, bottleneck=BOTTLENECK) == 4
    count = sum(p.numel() for p in trainable(model).values())
    assert count == adapter_parameter_count([32] * 4, BOTTLENECK) == 4 * (2 * 32 * 8 + 32 + 8)
    assert count == 2208
    assert all(".adapter." in n for n in trainable(model))
    for name, param in model.named_parameters():
        if ".adapter." not in name:
            assert not param.requires_grad, name
    # Every base parameter is still there, one level deeper under the wrappers.
    names = [n for n, _ in model.named_parameters() if ".adapter." not in n]
    renamed = {n.replace(".base.", ".") for n in names}
    assert renamed == base_names


def test_fresh_adapters_are_the_identity():
    model = tiny_llama()
    before = logits(model)
    add_adapters(model, bottleneck=BOTTLENECK)
    assert torch.equal(logits(model), before)


def test_adapters_sit_after_o_proj_and_down_proj_of_every_layer_only():
    model = tiny_llama()
    add_adapters(model, bottleneck=BOTTLENECK)
    adapted = {n for n, m in model.named_modules() if isinstance(m, AdaptedLinear)}
    expected = {
        f"model.layers.{i}.{name}"
        for i in range(2)
        for name in ("self_attn.o_proj", "mlp.down_proj")
    }
    assert adapted == expected
    adapters = {n for n, m in model.named_modules() if isinstance(m, BottleneckAdapter)}
    assert adapters == {f"{n}.adapter" for n in expected}
    for layer in model.model.layers:
        for module in (layer.self_attn.o_proj, layer.mlp.down_proj):
            assert isinstance(module.base, torch.nn.Linear)
            assert module.adapter.up.out_features == module.base.out_features == 32
            assert module.adapter.down.out_features == BOTTLENECK
        for module in (layer.self_attn.q_proj, layer.mlp.up_proj, layer.mlp.gate_proj):
            assert type(module) is torch.nn.Linear
    assert type(model.lm_head) is torch.nn.Linear


def test_perturbed_adapters_change_outputs():
    model = tiny_llama()
    before = logits(model)
    add_adapters(model, bottleneck=BOTTLENECK)
    perturb(model)
    assert not torch.allclose(logits(model), before)


def test_training_changes_only_adapter_weights():
    model = tiny_llama()
    add_adapters(model, bottleneck=BOTTLENECK)
    model.train()
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    adapters = {n: p.detach().clone() for n, p in trainable(model).items()}
    optimizer = torch.optim.AdamW(trainable(model).values(), lr=1e-2)
    for _ in range(3):
        loss = model(input_ids=INPUT_IDS, labels=INPUT_IDS).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for name, param in model.named_parameters():
        if name in frozen:
            assert torch.equal(param, frozen[name]), name
            assert param.grad is None, name
    assert all(not torch.equal(trainable(model)[n], adapters[n]) for n in adapters)


def test_save_load_round_trip(tmp_path):
    model = tiny_llama()
    add_adapters(model, bottleneck=BOTTLENECK, activation="silu")
    perturb(model)
    expected = logits(model)
    save_adapters(model, tmp_path / "adapter", {"bottleneck": BOTTLENECK, "lr": 1e-3})

    folder = tmp_path / "adapter"
    assert sorted(p.name for p in folder.iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors",
    ]
    saved = json.loads((folder / "adapter_config.json").read_text())
    assert saved["adapter_type"] == "houlsby"
    assert saved["bottleneck"] == BOTTLENECK and saved["lr"] == 1e-3
    assert saved["activation"] == "silu"
    tensors = load_file(str(folder / "adapter_model.safetensors"))
    assert tensors and all(".adapter." in k for k in tensors)
    assert tensors.keys() == adapter_state_dict(model).keys()
    assert sum(t.numel() for t in tensors.values()) == 2208

    fresh = tiny_llama()
    assert not torch.equal(logits(fresh), expected)
    config = load_adapters(fresh, folder)
    assert config["adapter_type"] == "houlsby"
    assert torch.equal(logits(fresh), expected)
    assert not any(p.requires_grad for p in fresh.parameters())

    again = tiny_llama()
    load_adapters(again, folder, trainable=True)
    assert sum(p.numel() for p in trainable(again).values()) == 2208


def test_adapter_state_dict_is_a_detached_cpu_copy():
    model = tiny_llama()
    add_adapters(model, bottleneck=BOTTLENECK)
    state = adapter_state_dict(model)
    assert len(state) == 4 * 4
    assert all(t.device.type == "cpu" and not t.requires_grad for t in state.values())
    perturb(model)
    assert torch.count_nonzero(state["model.layers.0.mlp.down_proj.adapter.up.weight"]) == 0


@pytest.mark.parametrize("change", ["missing", "extra"])
def test_load_rejects_a_file_with_missing_or_extra_keys(tmp_path, change):
    model = tiny_llama()
    add_adapters(model, bottleneck=BOTTLENECK)
    save_adapters(model, tmp_path, {"bottleneck": BOTTLENECK})
    weights = tmp_path / "adapter_model.safetensors"
    tensors = load_file(str(weights))
    if change == "missing":
        del tensors["model.layers.1.self_attn.o_proj.adapter.down.bias"]
    else:
        tensors["model.layers.0.mlp.up_proj.adapter.up.bias"] = torch.zeros(32)
    save_file(tensors, str(weights))

    fresh = tiny_llama()
    before = logits(fresh)
    with pytest.raises(ValueError, match=r"adapter_model\.safetensors") as error:
        load_adapters(fresh, tmp_path)
    assert ("missing keys ['model.layers.1" in str(error.value)) == (change == "missing")
    assert ("unexpected keys ['model.layers.0" in str(error.value)) == (change == "extra")
    # The failed load took its adapters out again.
    assert not any(isinstance(m, AdaptedLinear) for m in fresh.modules())
    assert torch.equal(logits(fresh), before)


def test_no_matching_targets_lists_existing_linear_names():
    model = tiny_llama()
    with pytest.raises(ValueError, match="c_proj") as error:
        add_adapters(model, targets=("c_proj",))
    message = str(error.value)
    assert "q_proj" in message and "model.layers.0.self_attn.q_proj" in message
    assert "adapters.targets" in message
    assert not any(isinstance(m, AdaptedLinear) for m in model.modules())


def test_targets_may_be_one_comma_separated_string():
    model = tiny_llama()
    assert add_adapters(model, bottleneck=BOTTLENECK, targets="q_proj, v_proj") == 4


def test_adapting_twice_is_refused():
    model = tiny_llama()
    add_adapters(model, bottleneck=BOTTLENECK)
    with pytest.raises(ValueError, match="already"):
        add_adapters(model, bottleneck=BOTTLENECK)
    assert sum(isinstance(m, BottleneckAdapter) for m in model.modules()) == 4


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match=r"gelu.*relu.*silu.*tanh"):
        BottleneckAdapter(32, 8, activation="swish")
    model = tiny_llama()
    with pytest.raises(ValueError, match="swish"):
        add_adapters(model, bottleneck=BOTTLENECK, activation="swish")
    assert not any(isinstance(m, AdaptedLinear) for m in model.modules())


def test_adapter_weights_stay_fp32_on_a_bf16_base():
    layer = torch.nn.Linear(16, 24, dtype=torch.bfloat16)
    wrapped = AdaptedLinear(layer, 4)
    assert all(p.dtype == torch.float32 for p in wrapped.adapter.parameters())  # master weights
    assert wrapped.adapter.up.out_features == 24
    x = torch.randn(3, 16, dtype=torch.bfloat16)
    assert torch.equal(wrapped(x), layer(x))
