"""Full fine-tuning: every weight of the base model is updated (supervised fine-tuning with
trl's SFTTrainer, loss on the reply only). The artifact is the whole model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.approach import RunContext, option
from harness.core.hookspecs import hookimpl
from harness.train.sft import TrainingConfig
from harness.train.trained import TrainedApproach


@dataclass
class FullFinetuneOptions(TrainingConfig):
    learning_rate: float = option(5e-5, "peak learning rate (linear decay after warm-up)")


class FullFinetune(TrainedApproach):
    name = "full-ft"
    kind = "full fine-tuning"
    description = "supervised fine-tuning of all weights"
    Config = FullFinetuneOptions

    def load_for_training(self, ctx: RunContext) -> tuple[Any, Any]:
        return ctx.load_base(trainable=True)  # fp32 master weights under mixed precision

    def attach(self, model: Any, ctx: RunContext) -> Any:
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return model

    def save(self, model: Any, folder: Path) -> None:
        model.save_pretrained(folder)

    def restore(self, ctx: RunContext, folder: Path) -> tuple[Any, Any]:
        from safetensors.torch import load_model

        model, tokenizer = ctx.load_base(trainable=True)
        load_model(model, folder / "model.safetensors", strict=True, device=str(ctx.device))
        return model.eval(), tokenizer


@hookimpl
def register_approaches(register):
    register(FullFinetune)
