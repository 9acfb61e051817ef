"""Prompting approaches: zero-shot and few-shot in-context learning (Brown et al., 2020).

Both leave the weights alone; few-shot puts ``k`` solved training examples before the question
as earlier user/assistant turns of the chat, which is how instruction-tuned models expect them.
Either can calibrate its choice scores (``calibrate=true``): contextual calibration (Zhao et al.,
2021, "Calibrate Before Use"), implemented in :mod:`plugins.calibration`.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.core.approach import Approach, RunContext, option
from harness.core.hookspecs import hookimpl
from harness.core.overrides import check_option
from harness.models.lm_candidate import LMCandidate
from harness.tasks.base import Example, Message, TaskData
from plugins.calibration import CalibratedCandidate

CALIBRATE_HELP = (
    "contextual calibration (Zhao et al., 2021): divide each choice's probability by its "
    "probability on content-free inputs (N/A, [MASK], empty) in the same prompt; affects "
    "choice scoring only, not generation"
)


def prompted_candidate(
    ctx: RunContext, calibrate: bool,
    rewrite: Callable[[Sequence[Message]], list[Message]] | None = None,
) -> LMCandidate:
    """The frozen base model answering through ``rewrite``; with ``calibrate``, a
    :class:`~plugins.calibration.CalibratedCandidate` whose estimate for the task's label set
    is computed here, so that ``info["calibration"]`` reaches the store with the run."""
    model, tokenizer = ctx.frozen_base()
    if not calibrate:
        return LMCandidate(model, tokenizer, rewrite=rewrite)
    candidate = CalibratedCandidate(model, tokenizer, rewrite=rewrite)
    template = label_set_template(ctx.task)
    if template is not None:
        candidate.set_precision(ctx.precision)  # estimate as the items will be scored
        candidate.estimate({tuple(template.choices): template.messages})
    return candidate


def recorded_config(config: Any) -> dict[str, Any]:
    """``config`` as the store records (and hashes) it: ``calibrate`` only when it is on, so
    that runs with the default keep the config and config hash they had before the option
    existed (the reports then still treat them as the same candidate)."""
    recorded = dataclasses.asdict(config)
    if not recorded.get("calibrate"):
        recorded.pop("calibrate", None)
    return recorded


def label_set_template(task: TaskData) -> Example | None:
    """A training (else validation) item whose choices are the task's label set, to build the
    content-free prompt from (only its format is used); never an eval item. ``None`` for
    tasks without labels, whose choice sets are estimated when first scored."""
    labels = set(task.labels)
    if not labels:
        return None
    items = itertools.chain(task.train, task.validation)
    return next((e for e in items if set(e.choices) == labels), None)


@dataclass
class ZeroShotConfig:
    calibrate: bool = option(False, CALIBRATE_HELP)


class ZeroShot(Approach):
    name = "zero-shot"
    kind = "prompting"
    description = "the base model with the task's instruction and nothing else"
    Config = ZeroShotConfig

    def config_dict(self) -> dict[str, Any]:
        return recorded_config(self.config)

    def prepare(self, ctx: RunContext) -> LMCandidate:
        return prompted_candidate(ctx, self.config.calibrate)


@dataclass
class FewShotConfig:
    k: int = option(4, "number of solved training examples put in the prompt")
    balanced: bool = option(
        True, "for classification tasks, draw the examples round-robin over labels"
    )
    calibrate: bool = option(False, CALIBRATE_HELP)

    def __post_init__(self) -> None:
        check_option(self.k >= 0, "k", "must be >= 0 (0 shows no examples, like zero-shot)")


def pick_demonstrations(train: Sequence[Example], k: int, seed: int, balanced: bool) -> list:
    """``k`` training examples chosen with ``seed``; label-balanced when asked and possible."""
    rng = random.Random(seed)
    pool = list(train)
    rng.shuffle(pool)
    if not balanced or not any(e.choices for e in pool):
        return pool[:k]
    by_label: dict[str, list[Example]] = {}
    for example in pool:
        by_label.setdefault(example.answer, []).append(example)
    queues = [by_label[label] for label in sorted(by_label)]
    picked: list[Example] = []
    while len(picked) < k and any(queues):
        for queue in queues:
            if queue and len(picked) < k:
                picked.append(queue.pop())
    rng.shuffle(picked)
    return picked


class FewShot(Approach):
    name = "few-shot"
    kind = "prompting"
    description = "k seeded training examples as earlier chat turns before the question"
    Config = FewShotConfig

    def config_dict(self) -> dict[str, Any]:
        return recorded_config(self.config)

    def unsupported_reason(self, task) -> str | None:
        return None if task.train else "the task has no training examples to show"

    def prepare(self, ctx: RunContext) -> LMCandidate:
        shots = pick_demonstrations(ctx.task.train, self.config.k, ctx.seed, self.config.balanced)
        demonstration: list[Message] = []
        for shot in shots:
            demonstration += [m for m in shot.messages if m["role"] != "system"]
            demonstration.append({"role": "assistant", "content": shot.answer})

        def with_shots(messages: Sequence[Message]) -> list[Message]:
            system = [m for m in messages if m["role"] == "system"]
            rest = [m for m in messages if m["role"] != "system"]
            return system + demonstration + rest

        candidate = prompted_candidate(ctx, self.config.calibrate, with_shots)
        candidate.info["demonstration_ids"] = [shot.id for shot in shots]
        return candidate


@hookimpl
def register_approaches(register):
    register(ZeroShot)
    register(FewShot)
