"""``dpo``: Direct Preference Optimization on chosen/rejected pairs (Rafailov et al., 2023).

DPO trains the policy to raise the log-probability ratio (policy / reference) of the chosen
reply over the rejected one, through trl's ``DPOTrainer``; ``beta`` sets how far it may move
from the reference. By default it trains a LoRA adapter on the frozen base (the reference is
the base). Composed on a trained candidate (``lora+dpo``, ``full-ft+dpo``...) it continues from
that candidate, which is then the reference: a PEFT candidate's adapter keeps training, any
other candidate gets a new LoRA adapter. Only adapter weights are saved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.approach import Candidate, RunContext, option
from harness.core.capabilities import RewritesPrompts
from harness.core.hookspecs import hookimpl
from harness.core.overrides import check_option
from harness.models.lm_candidate import LMCandidate
from harness.tasks.base import TaskData
from harness.train.preference import train_dpo
from harness.train.sft import TrainingResult
from plugins.peft_methods import Lora, LoraOptions

ADAPTER_FILE = "adapter_model.safetensors"


@dataclass
class DpoOptions(LoraOptions):
    learning_rate: float = option(5e-5, "peak learning rate (linear decay after warm-up)")
    beta: float = option(0.1, "strength of the pull towards the reference (higher: stay closer)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_option(0 < self.beta < math.inf, "beta",
                     "must be a number > 0 (at 0 the loss has no gradient)")


def _is_peft(model: Any) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


class PreferenceApproach(Lora):
    """Shared by approaches trained on preference pairs; they can continue from a candidate."""

    builds_on_candidates = True

    def unsupported_reason(self, task: TaskData) -> str | None:
        if not any(e.rejected is not None for e in task.train):
            return ("the task has no preference pairs (a rejected reply per item); use "
                    "--task=prefs or a prompt/chosen/rejected data file")
        return None

    def build_on(self, ctx: RunContext, inner: Candidate) -> Candidate:
        if not isinstance(inner, LMCandidate) or isinstance(inner, RewritesPrompts):
            raise ValueError(
                f"{self.name} continues training a model, so it builds on weight-updating "
                f"candidates (lora+{self.name}, full-ft+{self.name}...), not on one that "
                "rewrites prompts (few-shot, rag)"
            )
        self.inner = inner
        return self.prepare(ctx)

    def load_for_training(self, ctx: RunContext) -> tuple[Any, Any]:
        if self.inner is not None:
            return self.inner.model, self.inner.tokenizer
        return super().load_for_training(ctx)

    def attach(self, model: Any, ctx: RunContext) -> Any:
        if _is_peft(model):  # continue the inner candidate's adapter; trl copies it as reference
            model.set_requires_grad(model.active_adapter, True)
            return model
        return super().attach(model, ctx)

    def finish_training(self, model: Any) -> None:
        if "ref" in getattr(model, "peft_config", {}):
            model.delete_adapter("ref")  # trl's frozen copy of the starting adapter

    def restore(self, ctx: RunContext, folder: Path) -> tuple[Any, Any]:
        if self.inner is None:
            return super().restore(ctx, folder)
        model = self.inner.model
        if _is_peft(model):
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file

            set_peft_model_state_dict(model, load_file(folder / ADAPTER_FILE),
                                      adapter_name=model.active_adapter)
            return model.eval(), self.inner.tokenizer
        from peft import PeftModel

        return PeftModel.from_pretrained(model, folder).eval(), self.inner.tokenizer


class Dpo(PreferenceApproach):
    name = "dpo"
    kind = "preference"
    description = "Direct Preference Optimization (Rafailov et al., 2023) with a LoRA adapter"
    Config = DpoOptions

    def fit(self, model: Any, tokenizer: Any, ctx: RunContext) -> TrainingResult:
        return train_dpo(
            model, tokenizer, ctx.task.train, ctx.task.validation, self.config,
            beta=self.config.beta, seed=ctx.seed, output_dir=ctx.run_dir / "trainer",
            precision=ctx.precision, curve_sink=ctx.log_curve,
        )


@hookimpl
def register_approaches(register):
    register(Dpo)
