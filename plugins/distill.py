"""``distill``: knowledge distillation, a student taught by any candidate (Hinton et al., 2015).

The teacher is the candidate of the approach before ``+distill`` (``full-ft+distill``,
``rag+distill``, ``lora+rag+distill``) or, used alone, the one ``--set distill.teacher=NAME``
names (default ``full-ft``): the harness prepares it exactly as a plain run of it (a trained
teacher comes from the same cache). The student is

- ``student=self``: the base model, trained in full or, with ``weights=lora``, through a LoRA
  adapter;
- ``student_layers=N``: a copy of the base model cut to N evenly spaced decoder layers
  (DistilBERT's initialisation, Sanh et al., 2019), genuinely smaller and faster;
- ``student=PATH``: a local model folder with the teacher's tokenizer.

Objectives: ``logits`` (the teacher's next-token distribution at each reference reply token,
:mod:`harness.train.distill`), ``on-policy`` (the same on replies sampled from the student,
GKD: Agarwal et al., 2024) and ``sequence`` (supervised fine-tuning on the teacher's own
greedy replies, Kim & Rush, 2016). The candidate keeps its teacher, so the distillation suite
measures agreement, size and speed against it.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.core.approach import Approach, Candidate, RunContext, option
from harness.core.hookspecs import hookimpl
from harness.core.overrides import check_option
from harness.models.lm_candidate import LMCandidate
from harness.models.student import keep_layers, parameter_count, tokenizer_mismatch
from harness.tasks.base import Example
from harness.train.distill import DistillSettings, label_with_teacher, train_distill
from harness.train.sft import TrainingConfig, TrainingResult, train_sft
from harness.train.trained import TrainedApproach

DEFAULT_TEACHER = "full-ft"
OBJECTIVES = ("logits", "on-policy", "sequence")


@dataclass
class DistillOptions(TrainingConfig):
    teacher: str = option(DEFAULT_TEACHER, "the approach (or composition, e.g. lora+rag) whose "
                          "candidate teaches, when distill comes first; in a composition "
                          "(full-ft+distill) the parts before distill teach")
    student: str = option("self", "self (the base model) or a local model folder with the "
                          "teacher's tokenizer")
    student_layers: int = option(0, "cut the student to this many evenly spaced decoder "
                                 "layers (0: keep all)")
    weights: Literal["full", "lora"] = option("full", "train all the student's weights or a "
                                              "LoRA adapter (r=16, alpha=32 on q/v)")
    objective: Literal["logits", "on-policy", "sequence"] = option(
        "logits", "logits: match the teacher's token distributions on the training replies; "
        "on-policy: on replies the student samples (GKD); sequence: fine-tune on the "
        "teacher's greedy replies")
    temperature: float = option(2.0, "softmax temperature of both distributions (logits, "
                                "on-policy); the loss is scaled by its square")
    beta: float = option(0.0, "generalized JSD interpolation: 0 KL(teacher||student), 1 "
                         "KL(student||teacher)")
    hard_label_weight: float = option(0.0, "weight of the reference replies' cross-entropy "
                                      "mixed into the loss (logits objective)")
    max_new_tokens: int = option(32, "longest reply the student samples (on-policy) or the "
                                 "teacher writes (sequence)")
    unlabeled_examples: int = option(0, "sequence objective: the teacher also labels up to "
                                     "this many unlabeled prompts (the task's training pool "
                                     "beyond the budget)")
    learning_rate: float = option(5e-5, "peak learning rate (linear decay after warm-up)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_option(bool(self.teacher.strip()) and "distill" not in self.teacher.split("+"),
                     "teacher", "must name another approach or composition, e.g. full-ft")
        check_option(self.student == "self" or Path(self.student).expanduser().is_dir(),
                     "student", "must be self or an existing local model folder")
        check_option(self.student_layers >= 0, "student_layers",
                     "must be >= 0 (0 keeps every layer)")
        check_option(self.weights in ("full", "lora"), "weights", "must be full or lora")
        check_option(self.objective in OBJECTIVES, "objective",
                     f"must be one of {', '.join(OBJECTIVES)}")
        check_option(0 < self.temperature < math.inf, "temperature", "must be a number > 0")
        check_option(0 <= self.beta <= 1, "beta", "must be in [0, 1]")
        check_option(0 <= self.hard_label_weight <= 1, "hard_label_weight",
                     "must be in [0, 1]")
        check_option(self.max_new_tokens >= 1, "max_new_tokens", "must be a positive integer")
        check_option(self.unlabeled_examples >= 0, "unlabeled_examples", "must be >= 0")
        check_option(not self.unlabeled_examples or self.objective == "sequence",
                     "unlabeled_examples", "needs objective=sequence (the other objectives "
                     "learn on the reference replies' tokens)")


class DistilledCandidate(LMCandidate):
    """A student that keeps its teacher (:class:`~harness.core.capabilities.TaughtByTeacher`)."""

    def __init__(self, model: Any, tokenizer: Any, teacher: Candidate, **kwargs: Any) -> None:
        super().__init__(model, tokenizer, **kwargs)
        self.teacher = teacher

    def set_precision(self, precision: Any) -> None:
        super().set_precision(precision)
        self.teacher.set_precision(precision)


class Distill(TrainedApproach):
    name = "distill"
    kind = "distillation"
    description = "a student (the base model, a cut copy, or a folder) taught by any candidate"
    Config = DistillOptions
    builds_on_candidates = True
    opt_in = True  # a teacher, then a student: 9 of the default comparison's 42 minutes

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.teacher_parts: Sequence[Approach] = ()
        """The parts before it in its composition: the teacher."""
        self.unlabeled: list[Example] = []
        """The unlabeled prompts the teacher labels (``unlabeled_examples``), set in prepare."""
        self.kept_layers: list[int] | None = None
        """The base model's layers a cut student kept."""

    def default_inner(self) -> str | None:
        return self.config.teacher

    def follow(self, inner: Sequence[Approach]) -> None:
        name = "+".join(part.name for part in inner)
        if self.config.teacher not in (DEFAULT_TEACHER, name):
            raise ValueError(f"distill.teacher={self.config.teacher} conflicts with the "
                             f"composition {name}+distill, whose teacher is {name}; drop "
                             "one of them")
        self.teacher_parts = list(inner)

    @property
    def teacher_name(self) -> str:
        return "+".join(part.name for part in self.teacher_parts) or self.config.teacher

    def config_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self.config), "teacher": self.teacher_name}

    def cache_inputs(self) -> Any:
        """The teacher's configuration (a prompt-rewriting teacher has no cache key of its
        own, and its options, ``rag.top_k``..., change what the student learns), the
        unlabeled prompts it labels, which the task's data hash leaves out, and a folder
        student's version (:func:`~harness.models.loading.folder_version`)."""
        student = self.config.student
        if student != "self":  # a folder: its weights, not just its path
            from harness.models.loading import resolve_model

            student = resolve_model(student).version
        return {"teacher": {part.name: part.config_dict() for part in self.teacher_parts},
                "unlabeled": [e.id for e in self.unlabeled], "student": student}

    def build_on(self, ctx: RunContext, inner: Candidate) -> Candidate:
        self.inner = inner
        return self.prepare(ctx)

    def prepare(self, ctx: RunContext) -> Candidate:
        if self.inner is None:
            raise RuntimeError("distill needs a teacher: run it as TEACHER+distill or alone "
                               "(its teacher option names one)")
        self.inner.set_precision(ctx.precision)  # the teacher computes as it will be served
        wanted = self.config.unlabeled_examples
        self.unlabeled = ctx.task.unlabeled[:wanted]
        if len(self.unlabeled) < wanted:
            warnings.warn(f"distill.unlabeled_examples={wanted}, but task {ctx.task.name!r} "
                          f"has {len(self.unlabeled)} unlabeled prompts beyond the budget; "
                          "using those", stacklevel=2)
        return super().prepare(ctx)

    def load_for_training(self, ctx: RunContext) -> tuple[Any, Any]:
        c = self.config
        if c.student == "self":
            model, tokenizer = ctx.load_base(trainable=True)
        else:
            from harness.models.loading import load_model, resolve_model

            model, tokenizer = load_model(resolve_model(c.student), ctx.device,
                                          ctx.precision.weights_dtype(True))
        problem = tokenizer_mismatch(self.inner.tokenizer, tokenizer)
        if problem:
            raise ValueError(f"distill.student={c.student} cannot learn from teacher "
                             f"{self.teacher_name}: {problem}; give a student built on the "
                             "same tokenizer")
        if c.student_layers:
            self.kept_layers = keep_layers(model, c.student_layers)
        return model, tokenizer

    def attach(self, model: Any, ctx: RunContext) -> Any:
        if self.config.weights == "lora":
            from peft import get_peft_model

            from plugins.peft_methods import Lora  # the lora approach's default recipe

            return get_peft_model(model, Lora().peft_config())
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return model

    def save(self, model: Any, folder: Path) -> None:
        model.save_pretrained(folder)  # a cut student's config says how many layers it has

    def restore(self, ctx: RunContext, folder: Path) -> tuple[Any, Any]:
        model, tokenizer = self.load_for_training(ctx)
        if self.config.weights == "lora":
            from peft import PeftModel

            return PeftModel.from_pretrained(model, folder).eval(), tokenizer
        from safetensors.torch import load_model

        load_model(model, folder / "model.safetensors", strict=True, device=str(ctx.device))
        return model.eval(), tokenizer

    def fit(self, model: Any, tokenizer: Any, ctx: RunContext) -> TrainingResult:
        c, task = self.config, ctx.task
        if c.objective == "sequence":
            train = label_with_teacher(self.inner, [*task.train, *self.unlabeled],
                                       c.max_new_tokens)
            validation = label_with_teacher(self.inner, task.validation, c.max_new_tokens)
            result = train_sft(model, tokenizer, train, validation, c, seed=ctx.seed,
                               output_dir=ctx.run_dir / "trainer", precision=ctx.precision,
                               curve_sink=ctx.log_curve)
        else:
            settings = DistillSettings(
                temperature=c.temperature, beta=c.beta, hard_label_weight=c.hard_label_weight,
                on_policy_fraction=1.0 if c.objective == "on-policy" else 0.0,
                max_new_tokens=c.max_new_tokens)
            result = train_distill(model, tokenizer, self.inner, task.train, task.validation,
                                   c, settings, seed=ctx.seed,
                                   output_dir=ctx.run_dir / "trainer",
                                   precision=ctx.precision, curve_sink=ctx.log_curve)
        result.extra.update(self.student_facts(model), unlabeled_examples=len(self.unlabeled))
        return result

    def student_facts(self, model: Any) -> dict[str, Any]:
        """Student and teacher sizes, recorded with the candidate (and its cache manifest)."""
        from harness.models.student import decoder_layers

        teacher = self.inner.model
        return {"teacher": self.teacher_name, "objective": self.config.objective,
                "student_params": parameter_count(model),
                "teacher_params": parameter_count(teacher),
                "student_layers": len(decoder_layers(model)),
                "teacher_layers": len(decoder_layers(teacher)),
                "kept_layers": self.kept_layers,
                "teacher_train_seconds": self.inner.info.get("train_seconds", 0.0)}

    def make_candidate(self, model: Any, tokenizer: Any) -> Candidate:
        return DistilledCandidate(model, tokenizer, teacher=self.inner)


@hookimpl
def register_approaches(register):
    register(Distill)
