"""Houlsby bottleneck adapters for any transformers causal language model.

Houlsby et al., 2019, "Parameter-Efficient Transfer Learning for NLP" (ICML): a small
bottleneck ``h + W_up(act(W_down(h)))`` is inserted after the attention output projection and
after the feed-forward output projection of every transformer layer; only the adapters train,
the base model stays frozen. ``W_up`` starts at zero, so a freshly inserted adapter is exactly
the identity and training starts from the base model's behaviour.

AdapterHub's ``adapters`` package pins transformers 4.x, so this is a compact reimplementation:
each target ``nn.Linear`` is wrapped in an :class:`AdaptedLinear` that applies the adapter to
its output. Saved folders look like a PEFT adapter folder (``adapter_model.safetensors`` and
``adapter_config.json``) and hold only the adapters' own weights. Adapters are non-linear, so
unlike LoRA they cannot be merged into the base weights.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

DEFAULT_TARGETS = ("o_proj", "down_proj")
"""Llama/Mistral/Qwen names of the attention output and MLP output projections."""

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh}
WEIGHTS_NAME = "adapter_model.safetensors"
CONFIG_NAME = "adapter_config.json"
ADAPTER_TYPE = "houlsby"


class BottleneckAdapter(nn.Module):
    """``h + up(act(down(h)))`` with ``up`` zero-initialised: the identity until trained."""

    def __init__(
        self,
        hidden_size: int,
        bottleneck: int,
        activation: str = "gelu",
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown adapter activation {activation!r}; choose one of {sorted(ACTIVATIONS)}"
            )
        if bottleneck < 1:
            raise ValueError(f"adapter bottleneck must be a positive integer, got {bottleneck}")
        self.activation = activation
        self.down = nn.Linear(hidden_size, bottleneck, device=device, dtype=dtype)
        self.act = ACTIVATIONS[activation]()
        self.up = nn.Linear(bottleneck, hidden_size, device=device, dtype=dtype)
        nn.init.normal_(self.down.weight, std=1e-2)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.up(self.act(self.down(h)))


class AdaptedLinear(nn.Module):
    """A frozen ``nn.Linear`` (``base``) followed by a :class:`BottleneckAdapter` (``adapter``)."""

    def __init__(self, base: nn.Linear, bottleneck: int, activation: str = "gelu") -> None:
        super().__init__()
        self.base = base.requires_grad_(False)
        self.in_features, self.out_features = base.in_features, base.out_features
        weight = base.weight
        # Trained weights stay at least fp32 (master weights) when the base is stored in bf16.
        self.adapter = BottleneckAdapter(
            base.out_features, bottleneck, activation, device=weight.device,
            dtype=torch.promote_types(weight.dtype, torch.float32),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.base(x)
        return self.adapter(h.to(self.adapter.up.weight.dtype)).to(h.dtype)


def _adapted(model: nn.Module) -> dict[str, AdaptedLinear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, AdaptedLinear)}


def add_adapters(
    model: nn.Module,
    bottleneck: int = 64,
    targets: Sequence[str] = DEFAULT_TARGETS,
    activation: str = "gelu",
) -> int:
    """Freeze ``model`` and wrap every ``nn.Linear`` whose last name component is in ``targets``.

    ``targets`` may also be one comma-separated string (``"o_proj,down_proj"``). Returns the
    number of adapters inserted; raises ValueError if nothing matches or ``model`` already has
    adapters (adapters are never nested).
    """
    if isinstance(targets, str):
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    targets = tuple(targets)
    if _adapted(model):
        raise ValueError("model already has Houlsby adapters; adapting it again would nest them")
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"unknown adapter activation {activation!r}; choose one of {sorted(ACTIVATIONS)}"
        )
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    chosen = [name for name in linears if name.rsplit(".", 1)[-1] in targets]
    if not chosen:
        suffixes = sorted({name.rsplit(".", 1)[-1] for name in linears})
        examples = ", ".join(linears[:6]) or "none"
        raise ValueError(
            f"no nn.Linear module named one of {list(targets)}; Linear names in this model end "
            f"in {suffixes} (e.g. {examples}); choose with --set adapters.targets=..."
        )
    model.requires_grad_(False)
    for name in chosen:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, AdaptedLinear(getattr(parent, child), bottleneck, activation))
    return len(chosen)


def adapter_parameter_count(hidden_sizes: Sequence[int], bottleneck: int) -> int:
    """Trainable parameters of adapters wrapping layers with these ``out_features``.

    Each adapter of width ``d`` and bottleneck ``m`` has ``down`` (``d*m`` weights + ``m``
    biases) and ``up`` (``m*d`` weights + ``d`` biases): ``2*d*m + d + m`` in total. Pass one
    ``d`` per inserted adapter, e.g. ``[hidden_size] * 2 * num_layers`` for the defaults.
    """
    return sum(2 * d * bottleneck + d + bottleneck for d in hidden_sizes)


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapters' weights only (keys containing ``.adapter.``), as detached CPU copies."""
    return {
        key: value.detach().to("cpu", copy=True).contiguous()
        for key, value in model.state_dict().items()
        if ".adapter." in key
    }


def save_adapters(model: nn.Module, folder: Path, config: dict[str, Any]) -> None:
    """Write ``adapter_model.safetensors`` and ``adapter_config.json`` into ``folder``.

    ``bottleneck``, ``activation`` and ``targets`` are filled in from the model when ``config``
    lacks them (``load_adapters`` needs them); a ``bottleneck`` or ``activation`` that disagrees
    with the model's adapters is a ValueError.
    """
    adapted = _adapted(model)
    if not adapted:
        raise ValueError("model has no Houlsby adapters to save; call add_adapters first")
    first = next(iter(adapted.values())).adapter
    actual = {
        "bottleneck": first.down.out_features,
        "activation": first.activation,
        "targets": sorted({name.rsplit(".", 1)[-1] for name in adapted}),
    }
    for key in ("bottleneck", "activation"):
        if key in config and config[key] != actual[key]:
            raise ValueError(f"config says {key}={config[key]!r} but the adapters have "
                             f"{actual[key]!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(adapter_state_dict(model), str(folder / WEIGHTS_NAME))
    full = {**actual, **config, "adapter_type": ADAPTER_TYPE}
    (folder / CONFIG_NAME).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")


def load_adapters(model: nn.Module, folder: Path, *, trainable: bool = False) -> dict[str, Any]:
    """Insert the adapters described in ``folder`` into ``model`` and load their weights.

    The file must hold exactly the adapter keys the config implies (no missing, no extra, same
    shapes). Adapter parameters are frozen unless ``trainable``. Returns the saved config.
    """
    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    config = json.loads(config_path.read_text())
    if config.get("adapter_type") != ADAPTER_TYPE or "bottleneck" not in config:
        raise ValueError(f"{config_path} is not a Houlsby adapter config "
                         f"(adapter_type={config.get('adapter_type')!r})")
    tensors = load_file(str(weights_path))
    add_adapters(model, bottleneck=config["bottleneck"],
                 targets=config.get("targets", DEFAULT_TARGETS),
                 activation=config.get("activation", "gelu"))
    expected = {k: v.shape for k, v in model.state_dict().items() if ".adapter." in k}
    missing = sorted(expected.keys() - tensors.keys())
    unexpected = sorted(tensors.keys() - expected.keys())
    wrong = sorted(k for k in expected.keys() & tensors.keys() if tensors[k].shape != expected[k])
    if missing or unexpected or wrong:
        for name, module in _adapted(model).items():  # take the adapters out again
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name), child, module.base)
        raise ValueError(f"{weights_path} does not match its adapter config: missing keys "
                         f"{missing[:5]}, unexpected keys {unexpected[:5]}, wrong shapes "
                         f"{wrong[:5]}")
    model.load_state_dict(tensors, strict=False)
    for module in _adapted(model).values():
        module.adapter.requires_grad_(trainable)
    return config
