"""Preference training shared by the ``dpo`` and ``rlhf`` approaches, through trl.

- :func:`train_dpo`: Direct Preference Optimization (Rafailov et al., 2023, "Direct Preference
  Optimization: Your Language Model is Secretly a Reward Model") with trl's ``DPOTrainer``.
  The model arrives as a PEFT model whose ``default`` adapter is trained; trl keeps a frozen
  copy of that adapter's starting weights as the reference (``"ref"``), so the reference is
  the base model for ``dpo`` and the supervised candidate for ``lora+dpo``.
- :func:`train_reward_model`: a Bradley-Terry reward model on the comparisons (Ouyang et al.,
  2022, "Training language models to follow instructions with human feedback"), trl's
  ``RewardTrainer`` on a sequence-classification head over the base model.
- :func:`train_rloo`: policy optimisation against that reward model with REINFORCE
  leave-one-out (Ahmadian et al., 2024, "Back to Basics: Revisiting REINFORCE Style
  Optimization for Learning from Human Feedback in LLMs"), trl's ``RLOOTrainer``, with a KL
  penalty ``beta`` to the same kind of reference as DPO.

Each returns a :class:`harness.train.sft.TrainingResult`, and logs curves to the store like
supervised training does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from harness.models.hardware import Precision
from harness.tasks.base import Example, Message
from harness.train.sft import (
    CurveSink,
    TrainingConfig,
    TrainingResult,
    common_arguments,
    quiet_library_noise,
    run_trainer,
)


def preference_pairs(examples: Sequence[Example], *, split: str) -> list[Example]:
    """The examples that carry a rejected reply; a clear error if there are none."""
    pairs = [e for e in examples if e.rejected is not None]
    if not pairs and examples:
        raise ValueError(
            f"the {split} split has no preference pairs (a 'rejected' reply per item); give "
            "prompt/chosen/rejected data, e.g. --task=prefs or a JSONL with those fields"
        )
    return pairs


def preference_records(examples: Sequence[Example]) -> list[dict[str, Any]]:
    """trl's conversational preference format: prompt messages, chosen and rejected turns."""
    return [
        {"prompt": list(e.messages),
         "chosen": [{"role": "assistant", "content": e.answer}],
         "rejected": [{"role": "assistant", "content": e.rejected}]}
        for e in examples
    ]


def _pair_training(
    train: list[Example], validation: list[Example], config: TrainingConfig, *, seed: int,
    output_dir: Path, precision: Precision,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Shared trainer arguments and datasets of the pairwise trainers (DPO, reward model)."""
    from datasets import Dataset

    quiet_library_noise()
    train = preference_pairs(train, split="train")
    validation = preference_pairs(validation, split="validation")
    arguments = common_arguments(config, len(train), seed=seed, output_dir=output_dir,
                                 precision=precision, validate=bool(validation))
    datasets = {
        "train_dataset": Dataset.from_list(preference_records(train)),
        "eval_dataset": Dataset.from_list(preference_records(validation)) if validation else None,
    }
    return {**arguments, "max_length": config.max_length}, datasets


def train_dpo(
    model: Any, tokenizer: Any, train: list[Example], validation: list[Example],
    config: TrainingConfig, *, beta: float, seed: int, output_dir: Path, precision: Precision,
    curve_sink: CurveSink,
) -> TrainingResult:
    """DPO on ``train``'s pairs; ``model`` is a PEFT model whose active adapter is trained."""
    from trl import DPOConfig, DPOTrainer

    from harness.train.callbacks import CurveLogger, PatienceStopping

    arguments, datasets = _pair_training(train, validation, config, seed=seed,
                                         output_dir=output_dir, precision=precision)
    curves = CurveLogger(curve_sink, {"loss": "loss", "rewards/margins": "reward_margin",
                                      "rewards/accuracies": "reward_accuracy"})
    patience = PatienceStopping(config.early_stopping_patience)
    trainer = DPOTrainer(model=model, args=DPOConfig(**arguments, beta=beta),
                         processing_class=tokenizer, callbacks=[curves, patience], **datasets)
    return run_trainer(trainer, curves, patience, validate=datasets["eval_dataset"] is not None)


def reward_model_from(causal_lm: Any) -> Any:
    """A one-output sequence-classification model sharing ``causal_lm``'s backbone weights.

    The score head starts at zero, so every reply starts with the same reward.
    """
    from transformers import AutoModelForSequenceClassification

    config = causal_lm.config.__class__.from_dict(causal_lm.config.to_dict())
    config.num_labels = 1
    config.pad_token_id = causal_lm.config.pad_token_id
    reward_model = AutoModelForSequenceClassification.from_config(
        config, dtype=causal_lm.dtype, attn_implementation=causal_lm.config._attn_implementation)
    reward_model.base_model.load_state_dict(causal_lm.base_model.state_dict())
    torch.nn.init.zeros_(reward_model.score.weight)
    return reward_model.to(causal_lm.device)


def train_reward_model(
    model: Any, tokenizer: Any, train: list[Example], validation: list[Example],
    config: TrainingConfig, *, seed: int, output_dir: Path, precision: Precision,
    curve_sink: CurveSink,
) -> TrainingResult:
    """Bradley-Terry reward modelling on ``train``'s pairs (``model``: a PEFT SEQ_CLS model)."""
    from trl import RewardConfig, RewardTrainer

    from harness.train.callbacks import CurveLogger

    arguments, datasets = _pair_training(train, validation, config, seed=seed,
                                         output_dir=output_dir, precision=precision)
    curves = CurveLogger(curve_sink, {"loss": "reward_model_loss",
                                      "accuracy": "reward_model_accuracy"})
    trainer = RewardTrainer(model=model, args=RewardConfig(**arguments),
                            processing_class=tokenizer, callbacks=[curves], **datasets)
    return run_trainer(trainer, curves, validate=datasets["eval_dataset"] is not None)


@torch.inference_mode()
def reward_scores(
    reward_model: Any, tokenizer: Any, prompts: Sequence[Sequence[Message]],
    replies: Sequence[str], batch_size: int = 8,
) -> list[float]:
    """The reward model's score of each reply to its prompt (chat-formatted like training)."""
    texts = [
        tokenizer.apply_chat_template(
            [*prompt, {"role": "assistant", "content": reply}], tokenize=False)
        for prompt, reply in zip(prompts, replies, strict=True)
    ]
    device = next(reward_model.parameters()).device
    scores: list[float] = []
    tokenizer.padding_side, side = "right", tokenizer.padding_side
    try:
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], return_tensors="pt",
                              padding=True, add_special_tokens=False).to(device)
            scores.extend(reward_model(**batch).logits[:, 0].float().tolist())
    finally:
        tokenizer.padding_side = side
    return scores


def train_rloo(
    model: Any, tokenizer: Any, reward_model: Any, prompts: list[Example],
    config: TrainingConfig, *, beta: float, generations: int, completion_tokens: int,
    temperature: float, seed: int, output_dir: Path, precision: Precision,
    curve_sink: CurveSink,
) -> TrainingResult:
    """RLOO on ``prompts`` against ``reward_model``; ``model`` is a PEFT causal LM.

    Each optimiser step samples ``generations`` replies to ``batch_size / generations``
    prompts; every prompt is used once per epoch.
    """
    from datasets import Dataset
    from trl import RLOOConfig, RLOOTrainer

    from harness.train.callbacks import CurveLogger

    quiet_library_noise()
    if config.batch_size % generations:
        raise ValueError(f"batch_size ({config.batch_size}) must be a multiple of generations "
                         f"({generations}): each step samples that many replies per prompt")
    per_step = config.batch_size // generations
    args = RLOOConfig(
        **common_arguments(config, len(prompts), seed=seed, output_dir=output_dir,
                           precision=precision, validate=False, per_step=per_step),
        beta=beta,
        num_generations=generations,
        max_completion_length=completion_tokens,
        temperature=temperature,
    )
    curves = CurveLogger(curve_sink, {"loss": "policy_loss", "reward": "reward", "kl": "kl"})

    class AutocastRLOOTrainer(RLOOTrainer):
        """trl samples the replies outside autocast; frozen weights stored in the compute
        dtype (``harness.models.hardware.store_linear_weights``) need the whole step inside it."""

        def training_step(self, *args: Any, **kwargs: Any) -> Any:
            with precision.autocast():
                return super().training_step(*args, **kwargs)

    trainer = AutocastRLOOTrainer(
        model=model, reward_funcs=reward_model, args=args, processing_class=tokenizer,
        reward_processing_classes=tokenizer, callbacks=[curves],
        train_dataset=Dataset.from_list([{"prompt": list(e.messages)} for e in prompts]),
    )
    return run_trainer(trainer, curves, validate=False)
