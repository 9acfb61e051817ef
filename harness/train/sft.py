"""Supervised fine-tuning shared by every weight-updating approach (trl's SFTTrainer).

Examples become prompt-completion conversations, so the loss covers the reply only (trl's
``completion_only_loss``) in the model's own chat format. Training is seeded, runs in the
session's precision (bf16 autocast with fp32 master weights where the hardware has it),
batches are grouped by length to cut padding, the prompt prefix the rows of a batch share
is encoded once per batch (:mod:`harness.models.prefix_sharing`), validation loss is computed
every ``eval_every`` steps, and both curves go to the results store as they are logged.
Early stopping is a simple patience rule on validation loss (Prechelt, 1998, "Early
stopping - but when?").
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.core.approach import option
from harness.core.overrides import check_option
from harness.models.hardware import Precision
from harness.models.prefix_sharing import can_share_prefix, with_prefix_sharing
from harness.tasks.base import Example

if TYPE_CHECKING:
    from harness.train.callbacks import CurveLogger, PatienceStopping

CurveSink = Callable[[int, str, str, float], None]
"""Receives ``(step, split, name, value)`` for each logged point of a training curve."""


@dataclass
class TrainingConfig:
    """Options every training approach shares (``--set <approach>.<field>=...``)."""

    learning_rate: float = option(2e-4, "peak learning rate (linear decay after warm-up)")
    epochs: float = option(1.0, "passes over the training split")
    max_steps: int = option(-1, "stop after this many optimiser steps (-1: use epochs)")
    batch_size: int = option(8, "examples per optimiser step")
    max_length: int = option(256, "longer training sequences are truncated (tokens)")
    warmup: float = option(0.1, "warm-up: fraction of steps if < 1, else a step count")
    weight_decay: float = option(0.0, "AdamW weight decay")
    eval_every: int = option(0, "validation loss every N steps (0: about 4 times per run)")
    early_stopping_patience: int = option(
        0, "stop after N validation evaluations without improvement (0: never)"
    )
    group_by_length: bool = option(True, "batch similar lengths together to reduce padding")
    share_prefix: bool = option(
        True, "encode the prompt prefix all rows of a batch share once per batch (same loss "
        "and gradients, less compute; harness/models/prefix_sharing.py)"
    )

    def __post_init__(self) -> None:
        """Refuse values training would fail on (or silently misread), before any run."""
        check_option(0 <= self.learning_rate < math.inf, "learning_rate",
                     "must be a number >= 0 (0 leaves the weights unchanged)")
        check_option(0 < self.epochs < math.inf, "epochs", "must be a number > 0")
        check_option(self.max_steps == -1 or self.max_steps >= 1, "max_steps",
                     "must be -1 (train for epochs) or a positive number of steps")
        check_option(self.batch_size >= 1, "batch_size", "must be a positive integer")
        check_option(self.max_length >= 1, "max_length", "must be a positive number of tokens")
        check_option(
            0 <= self.warmup < 1 or (self.warmup >= 1 and float(self.warmup).is_integer()),
            "warmup", "must be a fraction of the steps in [0, 1) or a whole number of steps",
        )
        check_option(0 <= self.weight_decay < math.inf, "weight_decay", "must be a number >= 0")
        check_option(self.eval_every >= 0, "eval_every",
                     "must be >= 0 (0: about 4 evaluations per run)")
        check_option(self.early_stopping_patience >= 0, "early_stopping_patience",
                     "must be >= 0 (0: never stop early)")


def sft_records(examples: list[Example]) -> list[dict[str, Any]]:
    """trl's conversational prompt-completion format: the loss is on the completion only."""
    return [
        {"prompt": list(e.messages), "completion": [{"role": "assistant", "content": e.answer}]}
        for e in examples
    ]


@dataclass
class TrainingResult:
    """What training reports back to the approach (and, through ``info``, to the store)."""

    train_seconds: float
    """Wall time of training, validation evaluations included."""
    eval_seconds: float
    """The part of ``train_seconds`` spent computing validation loss."""
    steps: int
    train_tokens: int
    curves: list[tuple[int, str, str, float]]
    stopped_early_at: int | None
    extra: dict[str, Any] = field(default_factory=dict)
    """Further facts for the store (e.g. the reward model's validation accuracy)."""

    def info(self) -> dict[str, Any]:
        optimising = max(self.train_seconds - self.eval_seconds, 1e-9)
        return {
            "train_seconds": round(self.train_seconds, 3),
            "validation_seconds": round(self.eval_seconds, 3),
            "train_steps": self.steps,
            "train_tokens": self.train_tokens,
            "train_tokens_per_second": round(self.train_tokens / optimising, 2),
            "stopped_early_at_step": self.stopped_early_at,
            **self.extra,
        }


def quiet_library_noise() -> None:
    """Filter known, harmless library messages (real errors still raise)."""
    warnings.filterwarnings("ignore", message=".*does not support bfloat16 compilation.*")
    warnings.filterwarnings("ignore", message=".*loss_type=None.*")
    # transformers 5 renamed gradient checkpointing; trl and peft still use the old names.
    warnings.filterwarnings("ignore", message=".*gradient_checkpointing.* is deprecated.*",
                            category=FutureWarning)
    logging.getLogger("transformers.trainer").setLevel(logging.ERROR)
    # trl prepares a dataset in four sub-second passes, each with its own bar; the training
    # bar (harness.train.callbacks.TrainingProgress) is the one that tells how far along it is.
    import datasets

    datasets.disable_progress_bars()


def _check_truncation(given: int, kept: int, max_length: int) -> None:
    """trl drops examples whose reply was cut off entirely by ``max_length``; say so."""
    advice = (f"their prompts are {max_length} tokens or longer (max_length), so no reply "
              "token is left to learn from; raise it with --set APPROACH.max_length=N")
    if kept == 0:
        raise ValueError(f"all {given} training examples were dropped: {advice}")
    if kept < given:
        warnings.warn(f"{given - kept} of {given} training examples were dropped: {advice}",
                      stacklevel=3)


def train_sft(
    model: Any,
    tokenizer: Any,
    train: list[Example],
    validation: list[Example],
    config: TrainingConfig,
    *,
    seed: int,
    output_dir: Path,
    precision: Precision,
    curve_sink: CurveSink,
    inspect_trainer: Callable[[Any], None] | None = None,
) -> TrainingResult:
    """Fine-tune ``model`` in place on ``train``; returns timings, token counts and curves.

    ``inspect_trainer`` (tests, benchmarks) sees the trainer before it starts.
    """
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from harness.train.callbacks import CurveLogger, PatienceStopping

    quiet_library_noise()
    if not train:
        raise ValueError("the task has no training examples; training approaches need some")
    args = SFTConfig(
        **common_arguments(config, len(train), seed=seed, output_dir=output_dir,
                           precision=precision, validate=bool(validation)),
        max_length=config.max_length,
        completion_only_loss=True,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
    )
    curves = CurveLogger(curve_sink)
    patience = PatienceStopping(config.early_stopping_patience)
    trainer = with_prefix_sharing(SFTTrainer)(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(sft_records(train)),
        eval_dataset=Dataset.from_list(sft_records(validation)) if validation else None,
        processing_class=tokenizer,
        callbacks=[curves, patience],
    )
    trainer.share_prefix = config.share_prefix and can_share_prefix(model)
    _check_truncation(len(train), len(trainer.train_dataset), config.max_length)
    if inspect_trainer is not None:
        inspect_trainer(trainer)
    return run_trainer(trainer, curves, patience, validate=bool(validation))


def common_arguments(
    config: TrainingConfig, examples: int, *, seed: int, output_dir: Path, precision: Precision,
    validate: bool, per_step: int | None = None,
) -> dict[str, Any]:
    """The ``TrainingArguments`` every trl trainer here shares (schedule, seeds, device, logging).

    ``per_step`` is how many training examples one optimiser step consumes (default: the
    batch size); it sets the number of steps from ``epochs``.
    """
    steps_per_epoch = math.ceil(examples / (per_step or config.batch_size))
    total_steps = (config.max_steps if config.max_steps > 0
                   else max(1, math.ceil(steps_per_epoch * config.epochs)))
    eval_every = config.eval_every or max(1, total_steps // 4)
    cuda = precision.device.type == "cuda"
    return dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size * 2,
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        max_steps=total_steps if per_step else config.max_steps,
        warmup_steps=config.warmup,
        weight_decay=config.weight_decay,
        logging_steps=max(1, min(eval_every, total_steps // 20 or 1)),
        eval_strategy="steps" if validate else "no",
        eval_steps=eval_every,
        save_strategy="no",
        report_to=[],
        seed=seed,
        data_seed=seed,
        use_cpu=not cuda,
        **precision.trainer_flags(),  # autocast with fp32 master weights, CPU or CUDA
        optim="adamw_torch_fused",  # one kernel over all parameters: 6x faster on the CPU
        gradient_checkpointing=False,
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
    )


def undo_training_wrappers(model: Any) -> None:
    """Undo what training left on ``model`` for training only, so a candidate trained in this
    process runs as one reloaded from the cache does: accelerate's mixed-precision wrapper of
    ``forward`` (autocast, and every output cast to fp32, full-vocabulary logits included:
    undone by ``accelerate.utils.extract_model_from_parallel(model,
    keep_fp32_wrapper=False)``) and ``config.use_cache = False``, which the Trainer sets from
    ``TrainingArguments`` (a causal LM's config defaults to ``True``, as a reloaded one has)."""
    from accelerate.utils import extract_model_from_parallel

    extract_model_from_parallel(model, keep_fp32_wrapper=False)
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "use_cache"):
        config.use_cache = True


def run_trainer(trainer: Any, curves: CurveLogger, patience: PatienceStopping | None = None,
                *, validate: bool) -> TrainingResult:
    """Train, make sure the validation curve ends at the last step, and report. Progress is
    one bar with the loss, not the trainer's printed log dictionaries (every trainer here)."""
    from harness.train.callbacks import show_training_progress

    show_training_progress(trainer)
    started = time.perf_counter()
    trainer.train()
    seconds, eval_seconds = time.perf_counter() - started, curves.eval_seconds
    if validate and not any(p[1] == "validation" and p[0] == trainer.state.global_step
                            for p in curves.points):
        trainer.evaluate()  # logs the final point, so the curves end where training ended
    trainer.model.eval()
    undo_training_wrappers(trainer.model)
    return TrainingResult(
        train_seconds=seconds,
        eval_seconds=eval_seconds,
        steps=trainer.state.global_step,
        train_tokens=int(trainer.state.num_input_tokens_seen),
        curves=curves.points,
        stopped_early_at=None if patience is None else patience.stopped_at,
    )
