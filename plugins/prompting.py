"""Prompting approaches: zero-shot and few-shot in-context learning (Brown et al., 2020).

Both leave the weights alone; few-shot puts ``k`` solved training examples before the question
as earlier user/assistant turns of the chat, which is how instruction-tuned models expect them.

Which ``k`` examples are shown moves few-shot's accuracy more than anything else measured here
(0.500 to 0.750 over three draws on ``sentiment``; Zhao et al., 2021; Lu et al., 2022), so one
draw's accuracy says little about the approach. Few-shot therefore draws its demonstrations
``draws`` times (draw 0 with the run's seed, as before the option existed) and answers each
item with one of them, chosen by a hash of the item's prompt: the accuracy is an average over
draws at the cost of one, and the suites bootstrap draws, then items
(:func:`harness.measure.metrics.clustered_mean`), so its interval includes the draw's variance.
Either can calibrate its choice scores (``calibrate=true``): contextual calibration (Zhao et al.,
2021, "Calibrate Before Use"), implemented in :mod:`plugins.calibration`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
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
    """``config`` as the store records (and hashes) it: ``calibrate`` only when it is on, and
    few-shot's ``draws`` only when it is not 1, so that runs measured the way they were before
    an option existed keep the config and config hash they had (the reports then still treat
    them as the same candidate)."""
    recorded = dataclasses.asdict(config)
    if not recorded.get("calibrate"):
        recorded.pop("calibrate", None)
    if recorded.get("draws") == 1:
        recorded.pop("draws")
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
    draws: int = option(
        8, "demonstration sets drawn; each item is answered with one of them (by a hash of its "
        "prompt), so the accuracy averages over draws and its CI includes their variance "
        "(1: one set, the run's seed)")

    def __post_init__(self) -> None:
        check_option(self.k >= 0, "k", "must be >= 0 (0 shows no examples, like zero-shot)")
        check_option(self.draws >= 1, "draws", "must be >= 1 (1 draws one set of examples)")


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


def draw_seed(seed: int, draw: int) -> int | str:
    """The seed of demonstration draw ``draw``: the run's own for draw 0, so ``draws=1``
    shows what few-shot showed before draws existed."""
    return seed if draw == 0 else f"{seed}:{draw}"


def prompt_draw(messages: Sequence[Message], draws: int) -> int:
    """The draw that answers a prompt: a hash of its messages, the same in every run."""
    if draws == 1:
        return 0
    digest = hashlib.sha256(json.dumps(list(messages), sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:8], "big") % draws


def as_turns(shots: Sequence[Example]) -> list[Message]:
    """Solved examples as earlier user/assistant turns (their system prompts left out)."""
    turns: list[Message] = []
    for shot in shots:
        turns += [m for m in shot.messages if m["role"] != "system"]
        turns.append({"role": "assistant", "content": shot.answer})
    return turns


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
        count, k = self.config.draws, self.config.k
        drawn = [pick_demonstrations(ctx.task.train, k, draw_seed(ctx.seed, d),
                                     self.config.balanced) for d in range(count)]
        turns = [as_turns(shots) for shots in drawn]

        def draw_of(messages: Sequence[Message]) -> int:
            return prompt_draw(messages, count)

        def with_shots(messages: Sequence[Message]) -> list[Message]:
            system = [m for m in messages if m["role"] == "system"]
            rest = [m for m in messages if m["role"] != "system"]
            return system + turns[draw_of(messages)] + rest

        candidate = prompted_candidate(ctx, self.config.calibrate, with_shots)
        candidate.info["demonstration_ids"] = [shot.id for shot in drawn[0]]
        if count > 1:
            candidate.draw_of = draw_of
            candidate.info["demonstration_draws"] = [[s.id for s in shots] for shots in drawn]
        return candidate


@hookimpl
def register_approaches(register):
    register(ZeroShot)
    register(FewShot)
