"""Knowledge distillation of a student from a teacher candidate, token by token.

The student learns the teacher's distribution over the next token at every reply position
(Hinton et al., 2015, "Distilling the Knowledge in a Neural Network": soft targets at a
temperature ``T``, loss scaled by ``T**2``). The divergence is GKD's generalized
Jensen-Shannon divergence (Agarwal et al., 2024, "On-Policy Distillation of Language Models:
Learning from Self-Generated Mistakes", Eq. 1): ``beta=0`` is the forward KL(teacher ||
student) of Hinton et al., ``beta=1`` the reverse KL, values between interpolate. With
``on_policy`` the replies are sampled from the student itself (GKD with ``lambda=1``), so
it learns to correct its own mistakes; otherwise they are the training set's replies.

trl's ``GKDTrainer`` computes the teacher's logits on the student's own input ids. Here the
teacher is any candidate: one that rewrites prompts (RAG, few-shot) reads its passages or
demonstrations while the student sees the plain prompt, which is how retrieval or
demonstrations are distilled into weights. So the loss lives in a small ``transformers``
``Trainer`` subclass (schedule, precision, logging and callbacks as every trainer here:
:func:`harness.train.sft.common_arguments`) that aligns the two views on the reply tokens.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from harness.core.capabilities import RewritesPrompts
from harness.measure.evaluate import CHUNK
from harness.models.hardware import Precision
from harness.models.lm_candidate import LMCandidate, chat_prompt_ids
from harness.tasks.base import Example, Message
from harness.train.sft import (
    CurveSink,
    TrainingConfig,
    TrainingResult,
    common_arguments,
    quiet_library_noise,
    run_trainer,
)


class TeacherView:
    """The teacher's language model and the prompts it actually sees.

    A candidate that rewrites prompts and wraps another (``RetrievalCandidate``) is unwrapped
    down to its :class:`LMCandidate`, keeping each rewrite, so the teacher's distributions
    are the ones its answers come from."""

    def __init__(self, candidate: Any) -> None:
        self.rewrites: list[Callable[[Sequence[Sequence[Message]]], list[list[Message]]]] = []
        while not isinstance(candidate, LMCandidate):
            inner = getattr(candidate, "inner", None)
            if inner is None or not isinstance(candidate, RewritesPrompts):
                raise TypeError(
                    f"the teacher ({type(candidate).__name__}) has no language model whose "
                    "token distributions can be read; use --set distill.objective=sequence "
                    "(it needs only the teacher's replies)")
            self.rewrites.append(candidate.rewrite_prompts)
            candidate = inner
        self.lm = candidate

    def prompt_ids(self, prompts: Sequence[Sequence[Message]]) -> list[list[int]]:
        """Token ids of each conversation as the teacher's model is given it."""
        conversations: Sequence[Sequence[Message]] = prompts
        for rewrite in self.rewrites:
            conversations = rewrite(conversations)
        return [self.lm.prompt_ids(c) for c in conversations]  # applies its own rewrite

    @torch.no_grad()
    def reply_logits(self, prompts: Sequence[list[int]],
                     replies: Sequence[list[int]]) -> torch.Tensor:
        """The teacher's next-token logits at every reply position, rows concatenated in
        order: shape ``(sum of reply lengths, vocabulary)``."""
        with self.lm.autocast():
            return reply_positions(self.lm.model, self.lm.tokenizer.pad_token_id,
                                   prompts, replies)


def reply_positions(model: Any, pad: int, prompts: Sequence[list[int]],
                    replies: Sequence[list[int]]) -> torch.Tensor:
    """``model``'s logits predicting each reply token after its prompt (right-padded batch),
    rows concatenated in order: ``(sum of reply lengths, vocabulary)``."""
    device = next(model.parameters()).device
    sequences = [p + r for p, r in zip(prompts, replies, strict=True)]
    width = max(map(len, sequences))
    ids = torch.tensor([s + [pad] * (width - len(s)) for s in sequences], device=device)
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences],
                        device=device)
    logits = model(input_ids=ids, attention_mask=mask).logits
    rows = torch.cat([torch.full((len(r),), b, device=device)
                      for b, r in enumerate(replies)])
    columns = torch.cat([torch.arange(len(p) - 1, len(p) - 1 + len(r), device=device)
                         for p, r in zip(prompts, replies, strict=True)])
    return logits[rows, columns]


def generalized_jsd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, *,
                    beta: float, temperature: float) -> torch.Tensor:
    """GKD's generalized JSD between the teacher's and the student's next-token distributions
    at temperature ``temperature``, averaged over positions and scaled by
    ``temperature**2`` (Hinton et al.): ``beta=0`` KL(teacher || student), ``beta=1``
    KL(student || teacher)."""
    vocabulary = min(student_logits.shape[-1], teacher_logits.shape[-1])  # padded embeddings
    student = F.log_softmax(student_logits[..., :vocabulary].float() / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits[..., :vocabulary].float() / temperature, dim=-1)
    if beta == 0:
        divergence = (teacher.exp() * (teacher - student)).sum(-1)
    elif beta == 1:
        divergence = (student.exp() * (student - teacher)).sum(-1)
    else:
        mixture = torch.logsumexp(torch.stack(
            [teacher + math.log(beta), student + math.log(1 - beta)]), dim=0)
        divergence = (beta * (teacher.exp() * (teacher - mixture)).sum(-1)
                      + (1 - beta) * (student.exp() * (student - mixture)).sum(-1))
    return divergence.mean() * temperature**2


@dataclass(frozen=True)
class DistillItem:
    """One training or validation item: both views of the prompt and the reference reply."""

    student_prompt: list[int]
    teacher_prompt: list[int]
    reply: list[int]


def reply_ids(tokenizer: Any, messages: Sequence[Message], reply: str) -> list[int]:
    """The reply's tokens as the chat template ends the assistant turn (end-of-turn included)."""
    prompt = chat_prompt_ids(tokenizer, messages)
    text = tokenizer.apply_chat_template(
        [*messages, {"role": "assistant", "content": reply}], tokenize=False)
    full = tokenizer(text, add_special_tokens=False).input_ids
    if full[: len(prompt)] != prompt:
        raise ValueError("the chat template renders a conversation differently with its reply "
                         "than without: cannot tell the reply's tokens apart")
    return full[len(prompt):]


def distill_items(examples: Sequence[Example], tokenizer: Any, teacher: TeacherView,
                  max_length: int) -> list[DistillItem]:
    """Items for ``examples``; the student's view is cut to ``max_length`` tokens (the
    teacher's is not) and items with no reply token left are dropped, with a warning."""
    teacher_prompts = teacher.prompt_ids([e.messages for e in examples])
    items = []
    for example, teacher_prompt in zip(examples, teacher_prompts, strict=True):
        prompt = chat_prompt_ids(tokenizer, example.messages)
        reply = reply_ids(tokenizer, example.messages, example.answer)
        reply = reply[: max(0, max_length - len(prompt))]
        if reply:
            items.append(DistillItem(prompt, teacher_prompt, reply))
    if len(items) < len(examples):
        advice = ("their prompts are max_length tokens or longer; raise it with --set "
                  "distill.max_length=N")
        if not items:
            raise ValueError(f"all {len(examples)} examples were dropped: {advice}")
        warnings.warn(f"{len(examples) - len(items)} of {len(examples)} examples were dropped: "
                      f"{advice}", stacklevel=2)
    return items


class _Indices(torch.utils.data.Dataset):
    def __init__(self, start: int, stop: int) -> None:
        self.indices = range(start, stop)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> dict[str, int]:
        return {"index": self.indices[position]}


def _collate(rows: list[dict[str, int]]) -> dict[str, torch.Tensor]:
    return {"index": torch.tensor([row["index"] for row in rows])}


def _trainer_class() -> type:
    from transformers import Trainer

    class DistillationTrainer(Trainer):
        """A ``Trainer`` whose loss is :func:`generalized_jsd` to the teacher on reply tokens."""

        def setup(self, *, items: list[DistillItem], teacher: TeacherView,
                  settings: DistillSettings, seed: int) -> None:
            self.items, self.teacher, self.settings = items, teacher, settings
            self.coin = random.Random(seed)  # which steps sample from the student

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            items = [self.items[i] for i in inputs["index"].tolist()]
            prompts = [item.student_prompt for item in items]
            replies = [item.reply for item in items]
            s = self.settings
            sampled = model.training and bool(s.on_policy_fraction) and \
                self.coin.random() < s.on_policy_fraction
            if sampled:
                replies = self.sample_replies(model, prompts)
            student = reply_positions(model, self.processing_class.pad_token_id, prompts,
                                      replies)
            teacher = self.teacher.reply_logits([item.teacher_prompt for item in items],
                                                replies)
            loss = generalized_jsd(student, teacher, beta=s.beta, temperature=s.temperature)
            if s.hard_label_weight and not sampled:  # reference replies only
                targets = torch.tensor([t for r in replies for t in r], device=student.device)
                hard = F.cross_entropy(student.float(), targets)
                loss = (1 - s.hard_label_weight) * loss + s.hard_label_weight * hard
            if model.training:
                self.state.num_input_tokens_seen += sum(len(p) + len(r) for p, r in
                                                        zip(prompts, replies, strict=True))
            return (loss, None) if return_outputs else loss

        @torch.no_grad()
        def sample_replies(self, model: Any, prompts: list[list[int]]) -> list[list[int]]:
            """Replies sampled from the student (temperature 1), each ending at its first
            end-of-turn token (kept) or after ``max_new_tokens``."""
            tokenizer, device = self.processing_class, next(model.parameters()).device
            width = max(map(len, prompts))
            pad = tokenizer.pad_token_id
            ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts],
                                device=device)
            model.eval()
            try:
                generated = model.generate(
                    input_ids=ids, attention_mask=mask, do_sample=True, top_k=0, top_p=1.0,
                    temperature=1.0, max_new_tokens=self.settings.max_new_tokens,
                    pad_token_id=pad, eos_token_id=tokenizer.eos_token_id)
            finally:
                model.train()
            replies = []
            for row in generated[:, width:].tolist():
                end = row.index(tokenizer.eos_token_id) + 1 if tokenizer.eos_token_id in row \
                    else len(row)
                replies.append(row[:end] or [tokenizer.eos_token_id])
            return replies

        def prediction_step(self, model: Any, inputs: dict[str, Any],
                            prediction_loss_only: bool, ignore_keys: Any = None) -> Any:
            inputs = self._prepare_inputs(inputs)
            with torch.no_grad(), self.compute_loss_context_manager():
                loss = self.compute_loss(model, inputs)
            return loss.detach(), None, None

    return DistillationTrainer


@dataclass(frozen=True)
class DistillSettings:
    """How the student is taught (the ``distill`` approach's options)."""

    temperature: float = 1.0
    beta: float = 0.0
    on_policy_fraction: float = 0.0
    hard_label_weight: float = 0.0
    max_new_tokens: int = 32


def train_distill(
    model: Any, tokenizer: Any, teacher: Any, train: list[Example], validation: list[Example],
    config: TrainingConfig, settings: DistillSettings, *, seed: int, output_dir: Path,
    precision: Precision, curve_sink: CurveSink,
) -> TrainingResult:
    """Train ``model`` in place to imitate ``teacher`` (a candidate) on ``train``'s prompts
    (and replies, unless on-policy); validation loss is the divergence on ``validation``'s
    reference replies."""
    from transformers import TrainingArguments

    from harness.train.callbacks import CurveLogger, PatienceStopping

    quiet_library_noise()
    if not train:
        raise ValueError("the task has no training examples; distillation needs prompts")
    view = TeacherView(teacher)
    items = distill_items(train, tokenizer, view, config.max_length)
    held_out = distill_items(validation, tokenizer, view, config.max_length) \
        if validation else []
    arguments = common_arguments(config, len(items), seed=seed, output_dir=output_dir,
                                 precision=precision, validate=bool(held_out))
    arguments.update(include_num_input_tokens_seen="no", remove_unused_columns=False)
    curves = CurveLogger(curve_sink)
    patience = PatienceStopping(config.early_stopping_patience)
    trainer = _trainer_class()(
        model=model, args=TrainingArguments(**arguments), data_collator=_collate,
        train_dataset=_Indices(0, len(items)),
        eval_dataset=_Indices(len(items), len(items) + len(held_out)) if held_out else None,
        processing_class=tokenizer, callbacks=[curves, patience],
    )
    trainer.setup(items=items + held_out, teacher=view, settings=settings, seed=seed)
    return run_trainer(trainer, curves, patience, validate=bool(held_out))


def label_with_teacher(teacher: Any, examples: Sequence[Example],
                       max_new_tokens: int) -> list[Example]:
    """``examples`` with the teacher's greedy replies as answers: sequence-level knowledge
    distillation's training set (Kim & Rush, 2016, "Sequence-Level Knowledge Distillation")."""
    from dataclasses import replace

    replies = []
    for start in range(0, len(examples), CHUNK):
        chunk = examples[start : start + CHUNK]
        replies += teacher.generate([e.messages for e in chunk], max_new_tokens)
    return [replace(e, answer=reply, choices=(), rejected=None)
            for e, reply in zip(examples, replies, strict=True)]
