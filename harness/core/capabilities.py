"""What a candidate can do besides answering prompts, declared as ``typing.Protocol``\\ s.

Suites and approaches ask ``isinstance(candidate, ReadsDocuments)`` instead of probing for
attribute names: a candidate has a capability when it implements the protocol's members
(structural typing, PEP 544), so plugins need not inherit from anything to declare one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from harness.tasks.base import Message, Passage


@runtime_checkable
class ReadsDocuments(Protocol):
    """Answers from documents it retrieves (RAG): the retrieval and knowledge-update suites
    measure it."""

    top_k: int
    """How many chunks it retrieves per question."""
    passages: list[Passage]
    """The corpus version currently indexed."""

    def retrieve(self, queries: Sequence[str]) -> list[list[Any]]:
        """The retrieved chunks (with a ``passage_id``) for each query, best first."""
        ...

    def use_corpus(self, passages: list[Passage]) -> bool:
        """Answer from ``passages`` from now on, without retraining; ``True`` once indexed."""
        ...


@runtime_checkable
class CarriesRewardModel(Protocol):
    """Brings the reward model it was trained against (RLHF): the preference suite measures
    how often it ranks the chosen reply above the rejected one."""

    def rewards(self, prompts: list[list[Message]], replies: list[str]) -> list[float]:
        """The reward model's score of each reply to its prompt."""
        ...


@runtime_checkable
class RewritesPrompts(Protocol):
    """Changes the conversation before its model sees it (few-shot examples, retrieved
    passages): weights-level methods cannot continue training from it."""

    def rewrite_prompts(self, prompts: Sequence[Sequence[Message]]) -> list[list[Message]]:
        """The conversations its model is actually given for ``prompts``."""
        ...


@runtime_checkable
class TaughtByTeacher(Protocol):
    """Was trained to imitate another candidate (knowledge distillation): the distillation
    suite measures how often it agrees with its teacher, how much smaller and faster it is."""

    teacher: Any
    """The teacher :class:`~harness.core.approach.Candidate` it imitates."""
