"""Parameter-efficient fine-tuning through PEFT: LoRA, QLoRA, and any PEFT config file.

- ``lora``: low-rank updates ``B A`` (A: r x d, B: d x r) on chosen projections (Hu et al.,
  2021, "LoRA: Low-Rank Adaptation of Large Language Models"); defaults r=16, alpha=32,
  dropout 0.05 on q_proj/v_proj, the common recipe.
- ``qlora``: the same adapters on a base quantized to 4-bit NormalFloat with double
  quantization through bitsandbytes (Dettmers et al., 2023, "QLoRA"); the compute dtype is
  the session's precision (``--precision``: bf16 where the hardware runs it, else fp32).
- ``peft``: any PEFT config as JSON (the ``adapter_config.json`` a PEFT checkpoint carries, or
  the files of PEFT's own method comparison), so IA3, LoHa, LoKr, prefix tuning, VeRA... run
  without new code. Examples live in ``plugins/peft_configs/``.

Before training, every PEFT config is checked against the base model
(:mod:`harness.models.peft_check`): sizes written for another model, or module names the
model does not have, stop the run with the file and field named.

Only the adapter weights are saved (``adapter_model.safetensors``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.approach import RunContext, option
from harness.core.hookspecs import hookimpl
from harness.core.overrides import check_option
from harness.models.lm_candidate import LMCandidate
from harness.models.peft_check import check_peft_config
from harness.models.prefix_sharing import can_share_prefix
from harness.train.sft import TrainingConfig
from harness.train.trained import TrainedApproach

CONFIG_EXAMPLES = Path(__file__).resolve().parent / "peft_configs"


class PeftApproach(TrainedApproach):
    """Shared by approaches that train a PEFT adapter on a frozen base."""

    def peft_config(self) -> Any:
        raise NotImplementedError

    def given_fields(self) -> tuple[dict[str, Any], str]:
        """The PEFT config's fields as the user gave them, and where (for error messages)."""
        return self.peft_config().to_dict(), f"--set {self.name}"

    def attach(self, model: Any, ctx: RunContext) -> Any:
        from peft import get_peft_model

        config = self.peft_config()
        check_peft_config(*self.given_fields(), model=model)
        return get_peft_model(model, config)

    def save(self, model: Any, folder: Path) -> None:
        model.save_pretrained(folder)

    def restore(self, ctx: RunContext, folder: Path) -> tuple[Any, Any]:
        from peft import PeftModel

        base, tokenizer = self.load_for_training(ctx)
        return PeftModel.from_pretrained(base, folder).eval(), tokenizer

    def make_candidate(self, model: Any, tokenizer: Any) -> LMCandidate:
        return LMCandidate(model, tokenizer, share_prefix=can_share_prefix(model))


def _targets(modules: list[str]) -> list[str] | str:
    return "all-linear" if modules == ["all-linear"] else modules


@dataclass
class LoraOptions(TrainingConfig):
    r: int = option(16, "rank of the update matrices")
    alpha: int = option(32, "scaling: updates are multiplied by alpha / r")
    dropout: float = option(0.05, "dropout on the adapter input")
    target_modules: list[str] = option(
        ["q_proj", "v_proj"], "module names to adapt, comma-separated, or all-linear"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_option(self.r >= 1, "r", "must be a positive integer (the rank)")
        check_option(self.alpha >= 1, "alpha", "must be a positive integer")
        check_option(0 <= self.dropout < 1, "dropout", "must be a probability in [0, 1)")
        check_option(bool(self.target_modules), "target_modules",
                     "name at least one module, e.g. q_proj,v_proj, or all-linear")
        check_option("all-linear" not in self.target_modules or len(self.target_modules) == 1,
                     "target_modules", "all-linear already means every linear layer; give it "
                     "alone or list module names")


class Lora(PeftApproach):
    name = "lora"
    kind = "parameter-efficient"
    description = "LoRA adapters (Hu et al., 2021) on a frozen fp32/bf16 base"
    Config = LoraOptions

    def peft_config(self) -> Any:
        from peft import LoraConfig

        return LoraConfig(
            r=self.config.r, lora_alpha=self.config.alpha, lora_dropout=self.config.dropout,
            target_modules=_targets(self.config.target_modules), task_type="CAUSAL_LM",
        )


class QLora(Lora):
    name = "qlora"
    kind = "parameter-efficient"
    description = "LoRA on a 4-bit NF4 double-quantized base (Dettmers et al., 2023)"

    def load_for_training(self, ctx: RunContext) -> tuple[Any, Any]:
        from transformers import BitsAndBytesConfig

        quantization = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=ctx.precision.compute_dtype,
        )
        return ctx.load_base(quantization_config=quantization)

    def attach(self, model: Any, ctx: RunContext) -> Any:
        from peft import prepare_model_for_kbit_training

        # bitsandbytes repacks 4-bit weights for a faster CPU kernel the first time a layer
        # runs in eval mode (e.g. validation loss), and that kernel has no backward: training
        # after it would silently lose gradients. Keep the trainable layout while training.
        self._set_cpu_repacking(model, False)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        return super().attach(model, ctx)

    def finish_training(self, model: Any) -> None:
        # trl keeps QLoRA adapters in bf16 while training (as the paper does); PEFT reloads
        # saved adapters in fp32. Cast now so a fresh and a reloaded candidate are the same
        # model (bf16 values are exact in fp32).
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.data = parameter.data.float()
        self._set_cpu_repacking(model, True)

    @staticmethod
    def _set_cpu_repacking(model: Any, enabled: bool) -> None:
        """Pause (and later restore) bitsandbytes' eval-time repacking of 4-bit CPU weights."""
        from bitsandbytes.nn import Linear4bit

        for module in model.modules():
            if isinstance(module, Linear4bit):
                if not enabled:
                    module.repack_when_enabled = module.support_avx512bf16_for_cpu
                module.support_avx512bf16_for_cpu = enabled and getattr(
                    module, "repack_when_enabled", False)


@dataclass
class PeftFileOptions(TrainingConfig):
    config: str = option(
        str(CONFIG_EXAMPLES / "ia3.json"),
        "path to a PEFT config JSON (peft_type plus its options); examples in "
        "plugins/peft_configs/",
    )


class PeftFromFile(PeftApproach):
    name = "peft"
    kind = "parameter-efficient"
    description = "any PEFT method from a config JSON (IA3, LoHa, LoKr, prefix tuning...)"
    Config = PeftFileOptions

    def _config_text(self) -> str:
        path = Path(self.config.config).expanduser()
        try:
            return path.read_text()
        except OSError as error:
            examples = ", ".join(sorted(p.name for p in CONFIG_EXAMPLES.glob("*.json")))
            raise ValueError(
                f"--set peft.config={self.config.config}: cannot read it ({error}); give a "
                f"PEFT config JSON, e.g. one of {examples} in {CONFIG_EXAMPLES}"
            ) from None

    def cache_inputs(self) -> Any:
        return self._config_text()

    def given_fields(self) -> tuple[dict[str, Any], str]:
        path = self.config.config
        try:
            fields = json.loads(self._config_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{error.lineno}: invalid JSON ({error.msg})") from None
        if not isinstance(fields, dict) or "peft_type" not in fields:
            raise ValueError(f"{path}: field 'peft_type' is missing; add e.g. \"peft_type\": "
                             "\"IA3\" (see plugins/peft_configs/ for complete examples)")
        return {"task_type": "CAUSAL_LM", **fields}, path

    def peft_config(self) -> Any:
        from peft import get_peft_config

        fields, path = self.given_fields()
        try:
            return get_peft_config(fields)
        except (TypeError, ValueError, KeyError) as error:
            raise ValueError(f"{path}: not a valid PEFT config ({error})") from None


@hookimpl
def register_approaches(register):
    register(Lora)
    register(QLora)
    register(PeftFromFile)
