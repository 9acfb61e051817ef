"""``rlhf``: the classic pipeline, a reward model from comparisons then RL against it.

Stage 1 trains a Bradley-Terry reward model on the train split's chosen/rejected pairs (a
one-output head over the base model, LoRA-adapted; trl ``RewardTrainer``) and records its
accuracy on the validation pairs. Stage 2 optimises a LoRA policy against that reward model
with REINFORCE leave-one-out and a KL penalty to the reference (trl ``RLOOTrainer``; PPO is no
longer in trl's stable API, and RLOO matches it at a fraction of the memory: Ahmadian et al.,
2024). This is the InstructGPT recipe (Ouyang et al., 2022) minus its SFT stage, which a
composition adds: ``lora+rlhf`` starts RL from the supervised candidate, which is then the
reference. Both stages are recorded (curves ``reward_model_*`` and ``reward``/``kl``/
``policy_loss``); the policy adapter and the reward model's adapter and head are saved.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.approach import RunContext, option
from harness.core.hookspecs import hookimpl
from harness.core.overrides import check_option
from harness.models.lm_candidate import LMCandidate
from harness.tasks.base import Message
from harness.train.preference import (
    reward_model_from,
    reward_scores,
    train_reward_model,
    train_rloo,
)
from harness.train.sft import TrainingResult
from plugins.dpo import PreferenceApproach
from plugins.peft_methods import LoraOptions

REWARD_MODEL_DIR = "reward_model"


@dataclass
class RlhfOptions(LoraOptions):
    learning_rate: float = option(5e-5, "policy learning rate (RL stage)")
    reward_learning_rate: float = option(1e-4, "reward model learning rate (stage 1)")
    reward_epochs: float = option(1.0, "passes over the comparisons when training the reward model")
    beta: float = option(0.05, "KL penalty coefficient towards the reference policy")
    generations: int = option(4, "replies sampled per prompt (the leave-one-out baseline's group)")
    rl_prompts: int = option(128, "training prompts used in the RL stage (capped by the split)")
    completion_tokens: int = option(48, "longest sampled reply, in tokens")
    temperature: float = option(1.0, "sampling temperature of the policy during RL")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_option(0 <= self.reward_learning_rate < math.inf, "reward_learning_rate",
                     "must be a number >= 0 (0 leaves the reward model untrained)")
        check_option(0 < self.reward_epochs < math.inf, "reward_epochs", "must be a number > 0")
        check_option(0 <= self.beta < math.inf, "beta", "must be a number >= 0 (0: no KL penalty)")
        check_option(self.generations >= 2, "generations",
                     "must be at least 2 (each reply's baseline is the mean of the others)")
        check_option(self.batch_size % self.generations == 0, "batch_size",
                     f"must be a multiple of generations ({self.generations}): each step "
                     "samples that many replies per prompt")
        check_option(self.rl_prompts >= 1, "rl_prompts", "must be a positive number of prompts")
        check_option(self.completion_tokens >= 1, "completion_tokens",
                     "must be a positive number of tokens")
        check_option(0 < self.temperature < math.inf, "temperature", "must be a number > 0")


class RlhfCandidate(LMCandidate):
    """The RL-trained policy, carrying its reward model so suites can measure it too."""

    def __init__(self, model: Any, tokenizer: Any, reward_model: Any) -> None:
        super().__init__(model, tokenizer)
        self.reward_model = reward_model

    def rewards(self, prompts: list[list[Message]], replies: list[str]) -> list[float]:
        """The trained reward model's score of each reply to its prompt."""
        with self.autocast():
            return reward_scores(self.reward_model, self.tokenizer, prompts, replies)


class Rlhf(PreferenceApproach):
    name = "rlhf"
    kind = "preference"
    description = "reward model from comparisons, then RLOO against it with a KL penalty"
    Config = RlhfOptions

    reward_model: Any = None

    def _reward_lora(self) -> Any:
        from peft import LoraConfig

        return LoraConfig(
            r=self.config.r, lora_alpha=self.config.alpha, lora_dropout=self.config.dropout,
            target_modules=self.peft_config().target_modules, task_type="SEQ_CLS",
        )

    def _fresh_reward_model(self, ctx: RunContext) -> Any:
        causal_lm, _ = ctx.load_base()
        return reward_model_from(causal_lm)

    def fit(self, model: Any, tokenizer: Any, ctx: RunContext) -> TrainingResult:
        from peft import get_peft_model

        task, trainer_dir = ctx.task, ctx.run_dir / "trainer"
        reward_model = get_peft_model(self._fresh_reward_model(ctx), self._reward_lora())
        reward_config = dataclasses.replace(
            self.config, learning_rate=self.config.reward_learning_rate,
            epochs=self.config.reward_epochs, max_steps=-1)
        stage1 = train_reward_model(
            reward_model, tokenizer, task.train, task.validation, reward_config, seed=ctx.seed,
            output_dir=trainer_dir / REWARD_MODEL_DIR, precision=ctx.precision,
            curve_sink=ctx.log_curve,
        )
        reward_model.eval()
        self.reward_model = reward_model
        pairs = [e for e in task.validation if e.rejected is not None]
        accuracy = None
        if pairs:
            prompts = [list(e.messages) for e in pairs]
            chosen = reward_scores(reward_model, tokenizer, prompts, [e.answer for e in pairs])
            rejected = reward_scores(reward_model, tokenizer, prompts,
                                     [e.rejected or "" for e in pairs])
            accuracy = sum(c > r for c, r in zip(chosen, rejected, strict=True)) / len(pairs)
        started = time.perf_counter()
        stage2 = train_rloo(
            model, tokenizer, _merged_copy(reward_model), task.train[: self.config.rl_prompts],
            self.config, beta=self.config.beta, generations=self.config.generations,
            completion_tokens=self.config.completion_tokens,
            temperature=self.config.temperature, seed=ctx.seed, output_dir=trainer_dir,
            precision=ctx.precision, curve_sink=ctx.log_curve,
        )
        return TrainingResult(
            train_seconds=stage1.train_seconds + stage2.train_seconds,
            eval_seconds=stage1.eval_seconds,
            steps=stage1.steps + stage2.steps,
            train_tokens=stage1.train_tokens + stage2.train_tokens,
            curves=stage1.curves + stage2.curves,
            stopped_early_at=None,
            extra={
                "reward_model_validation_accuracy": accuracy,
                "reward_model_seconds": round(stage1.train_seconds, 3),
                "rl_seconds": round(stage2.train_seconds, 3),
                "rl_steps": stage2.steps,
                "rl_wall_seconds": round(time.perf_counter() - started, 3),
            },
        )

    def save(self, model: Any, folder: Path) -> None:
        super().save(model, folder)
        self.reward_model.save_pretrained(folder / REWARD_MODEL_DIR)

    def restore(self, ctx: RunContext, folder: Path) -> tuple[Any, Any]:
        from peft import PeftModel

        self.reward_model = PeftModel.from_pretrained(
            self._fresh_reward_model(ctx), folder / REWARD_MODEL_DIR).eval()
        return super().restore(ctx, folder)

    def make_candidate(self, model: Any, tokenizer: Any) -> RlhfCandidate:
        return RlhfCandidate(model, tokenizer, self.reward_model)


def _merged_copy(reward_model: Any) -> Any:
    """A plain (non-PEFT) frozen copy of the reward model, as trl's RL trainers expect."""
    import copy

    merged = copy.deepcopy(reward_model).merge_and_unload().eval()
    for parameter in merged.parameters():
        parameter.requires_grad_(False)
    return merged


@hookimpl
def register_approaches(register):
    register(Rlhf)
