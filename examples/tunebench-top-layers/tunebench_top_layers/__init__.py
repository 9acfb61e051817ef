"""Example tunebench plugin: partial fine-tuning of the top ``n`` transformer layers.

Freezing the lower layers and training only the top ones is a classic cheap baseline between
prompting and full fine-tuning (Lee et al., 2019, "What Would Elsa Do? Freezing Layers During
Transformer Fine-Tuning"). Only the trained layers' weights are saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from harness import RunContext, TrainedApproach, TrainingConfig, hookimpl, option

WEIGHTS = "top_layers.safetensors"


@dataclass
class TopLayersOptions(TrainingConfig):
    layers: int = option(2, "how many of the top transformer layers to train")
    learning_rate: float = option(1e-4, "peak learning rate (linear decay after warm-up)")


def _decoder_layers(model: Any) -> torch.nn.ModuleList:
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and name.split(".")[-1] in ("layers", "h"):
            return module
    raise ValueError("top-layers: found no transformer layer list (.layers or .h) in the model")


class TopLayers(TrainedApproach):
    name = "top-layers"
    kind = "parameter-efficient"
    description = "fine-tune only the top N transformer layers, the rest frozen"
    Config = TopLayersOptions

    def attach(self, model: Any, ctx: RunContext) -> Any:
        layers = _decoder_layers(model)
        if not 0 < self.config.layers <= len(layers):
            raise ValueError(f"top-layers.layers must be 1..{len(layers)}, "
                             f"got {self.config.layers}")
        model.requires_grad_(False)
        for layer in layers[-self.config.layers:]:
            layer.requires_grad_(True)
        return model

    def save(self, model: Any, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        trained = {name: p.detach().contiguous().cpu()
                   for name, p in model.named_parameters() if p.requires_grad}
        save_file(trained, str(folder / WEIGHTS))

    def restore(self, ctx: RunContext, folder: Path) -> tuple[Any, Any]:
        model, tokenizer = ctx.load_base()
        weights = load_file(str(folder / WEIGHTS), device=str(ctx.device))
        missing = set(weights) - set(dict(model.named_parameters()))
        if missing:
            raise ValueError(f"{folder / WEIGHTS}: weights for unknown parameters "
                             f"{sorted(missing)}")
        model.load_state_dict(weights, strict=False)
        return model.eval(), tokenizer


@hookimpl
def register_approaches(register):
    register(TopLayers)
