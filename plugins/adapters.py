"""Houlsby bottleneck adapters (Houlsby et al., 2019): small down-/up-projections with a
residual, inserted after the attention and feed-forward output projections; the base stays
frozen. The module itself is :mod:`harness.train.houlsby`; only its weights are saved."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.core.approach import RunContext, option
from harness.core.hookspecs import hookimpl
from harness.core.overrides import check_option
from harness.train.houlsby import (
    ACTIVATIONS,
    DEFAULT_TARGETS,
    add_adapters,
    load_adapters,
    save_adapters,
)
from harness.train.sft import TrainingConfig
from harness.train.trained import TrainedApproach


@dataclass
class AdapterOptions(TrainingConfig):
    learning_rate: float = option(1e-3, "peak learning rate (linear decay after warm-up)")
    bottleneck: int = option(64, "adapter bottleneck size m (d -> m -> d)")
    activation: str = option("gelu", "non-linearity inside the adapter: gelu, relu, silu, tanh")
    targets: list[str] = option(
        list(DEFAULT_TARGETS), "linear layers whose output gets an adapter (attention and MLP out)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_option(self.bottleneck >= 1, "bottleneck", "must be a positive integer")
        check_option(self.activation in ACTIVATIONS, "activation",
                     f"must be one of {', '.join(sorted(ACTIVATIONS))}")
        check_option(bool(self.targets), "targets",
                     f"name at least one linear layer, e.g. {','.join(DEFAULT_TARGETS)}")


class Adapters(TrainedApproach):
    name = "adapters"
    kind = "parameter-efficient"
    description = "Houlsby bottleneck adapters after attention and feed-forward, base frozen"
    Config = AdapterOptions

    def _settings(self) -> dict[str, Any]:
        return {"bottleneck": self.config.bottleneck, "activation": self.config.activation,
                "targets": list(self.config.targets)}

    def attach(self, model: Any, ctx: RunContext) -> Any:
        add_adapters(model, **self._settings())
        return model

    def save(self, model: Any, folder: Path) -> None:
        save_adapters(model, folder, {**self._settings(), "training": asdict(self.config)})

    def restore(self, ctx: RunContext, folder: Path) -> tuple[Any, Any]:
        model, tokenizer = ctx.load_base()
        load_adapters(model, folder)
        return model.eval(), tokenizer


@hookimpl
def register_approaches(register):
    register(Adapters)
