"""Prompting approaches: zero-shot and few-shot in-context learning (Brown et al., 2020).

Both leave the weights alone; few-shot puts ``k`` solved training examples before the question
as earlier user/assistant turns of the chat, which is how instruction-tuned models expect them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from harness.core.approach import Approach, RunContext, option
from harness.core.hookspecs import hookimpl
from harness.core.overrides import check_option
from harness.models.lm_candidate import LMCandidate
from harness.tasks.base import Example, Message


class ZeroShot(Approach):
    name = "zero-shot"
    kind = "prompting"
    description = "the base model with the task's instruction and nothing else"

    def prepare(self, ctx: RunContext) -> LMCandidate:
        model, tokenizer = ctx.frozen_base()
        return LMCandidate(model, tokenizer)


@dataclass
class FewShotConfig:
    k: int = option(4, "number of solved training examples put in the prompt")
    balanced: bool = option(
        True, "for classification tasks, draw the examples round-robin over labels"
    )

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

        model, tokenizer = ctx.frozen_base()
        candidate = LMCandidate(model, tokenizer, rewrite=with_shots)
        candidate.info["demonstration_ids"] = [shot.id for shot in shots]
        return candidate


@hookimpl
def register_approaches(register):
    register(ZeroShot)
    register(FewShot)
