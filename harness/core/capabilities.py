"""What a candidate can do besides answering prompts, declared as ``typing.Protocol``\\ s.

Suites and approaches ask ``isinstance(candidate, ReadsDocuments)`` instead of probing for
attribute names: a candidate has a capability when it implements the protocol's members
(structural typing, PEP 544), so plugins need not inherit from anything to declare one.
An optional keyword of a member, which a protocol cannot check, is asked about by a function
(:func:`decodes_fixed_length`).
"""

from __future__ import annotations

import inspect
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


FIXED_LENGTH_KEYWORD = "ignore_eos"
"""The optional keyword of ``Candidate.generate`` asking for exactly ``max_new_tokens``."""


def decodes_fixed_length(candidate: Any) -> bool:
    """Whether ``candidate.generate`` takes ``ignore_eos=True`` (exactly ``max_new_tokens``
    new tokens, end-of-sequence ignored; see ``Candidate.generate``).

    Its ``generate``'s signature must declare a parameter named ``ignore_eos`` that can be
    passed by keyword: a candidate written before the keyword existed
    (``generate(prompts, max_new_tokens)``) does not, and neither does a ``**kwargs``
    catch-all (it may drop the keyword); the latency suite then falls back to timing the
    tokens it produces. A wrapper that declares it may still depend on the candidate it
    delegates to: it says so in a ``fixed_length_decoding`` attribute, which then decides.
    """
    generate = getattr(candidate, "generate", None)
    if generate is None:
        return False
    try:
        parameter = inspect.signature(generate).parameters.get(FIXED_LENGTH_KEYWORD)
    except (TypeError, ValueError):  # no signature to read (a builtin, a C extension)
        return False
    if parameter is None or parameter.kind not in (
            inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
        return False
    declared = getattr(candidate, "fixed_length_decoding", None)
    return True if declared is None else bool(declared)
