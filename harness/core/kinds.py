"""Kinds of adaptation, cheapest first: what an approach declares as its ``kind``.

Kept apart from the approach contract (no torch import) so reports can rank recorded runs.
"""

from __future__ import annotations

from collections.abc import Sequence

KINDS = ("prompting", "retrieval", "parameter-efficient", "preference", "distillation",
         "full fine-tuning")
"""Kinds of adaptation, cheapest first in what they cost to build and keep up (training,
data, artifacts to maintain). An approach declares its ``kind``; a composition is of its
costliest part's kind; the decision report ranks candidates by it."""


def costliest_kind(kinds: Sequence[str]) -> str:
    """The costliest of ``kinds`` (the kind of a composition of approaches)."""
    return max(kinds, key=KINDS.index)


KIND_LABELS = {"prompting": "prompting", "retrieval": "RAG",
               "parameter-efficient": "parameter-efficient fine-tuning",
               "preference": "preference tuning", "distillation": "distillation",
               "full fine-tuning": "full fine-tuning"}
"""How each kind reads in a sentence."""
WEIGHTS_UNCHANGED = frozenset({"prompting", "retrieval"})
"""Kinds that leave the model's weights as they are (nothing to retrain when data change)."""

__all__ = ["KINDS", "KIND_LABELS", "WEIGHTS_UNCHANGED", "costliest_kind"]
