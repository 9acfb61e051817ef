"""Compositions of approaches: ``lora+rag`` applies ``rag`` on top of ``lora``'s candidate.

Parts are read left to right: the first part prepares a candidate as it would alone (a
fine-tuned one comes from the same cache as its solo run), every later part must be able to
build on a candidate (``Approach.builds_on_candidates``) and wraps or continues from the
previous one. Options stay per part: ``--set lora.r=8 --set rag.top_k=3``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

from harness.core.approach import Approach, Candidate, RunContext
from harness.core.kinds import WEIGHTS_UNCHANGED, costliest_kind
from harness.core.registry import Registry
from harness.tasks.base import TaskData

SEPARATOR = "+"


def split_name(name: str) -> list[str]:
    return [part.strip() for part in name.split(SEPARATOR)]


def check_composition(name: str, registry: Registry) -> None:
    """Fail with a clear message if ``name`` is not a valid approach or composition."""
    parts = split_name(name)
    for part in parts:
        registry.get(part)  # unknown names fail with "did you mean"
    if len(set(parts)) != len(parts):
        raise ValueError(f"approach {name!r} names a part twice")
    for part in parts[1:]:
        if not registry.get(part).builds_on_candidates:
            able = [n for n in registry.names() if registry.get(n).builds_on_candidates
                    and not registry.get(n).control]
            raise ValueError(
                f"{part!r} cannot be applied on top of another approach in {name!r}; "
                f"approaches that can: {', '.join(able) or '(none)'}"
            )


class ComposedApproach(Approach):
    """Several registered approaches applied in sequence (built by the session, not registered)."""

    name: ClassVar[str] = "composed"
    description: ClassVar[str] = "approaches applied in sequence"

    def __init__(self, parts: list[Approach], name: str | None = None) -> None:
        super().__init__(config=None)
        self.parts = parts
        self.name = name or SEPARATOR.join(part.name for part in parts)  # type: ignore[misc]
        self.kind = costliest_kind([part.kind for part in parts])  # type: ignore[misc]

    def config_dict(self) -> dict[str, Any]:
        return {part.name: part.config_dict() for part in self.parts}

    def unsupported_reason(self, task: TaskData) -> str | None:
        for part in self.parts:
            reason = part.unsupported_reason(task)
            if reason:
                return f"{part.name}: {reason}"
        return None

    def prepare(self, ctx: RunContext) -> Candidate:
        """Each part in turn. The training curves of parts that train before the last one
        that does (``full-ft`` in ``full-ft+distill``, ``lora`` in ``lora+dpo``) are recorded
        under ``<part>/train`` and ``<part>/validation``, so the plain ``train`` and
        ``validation`` curves, which the overfitting suite reads, are the candidate's own."""
        trains = [i for i, part in enumerate(self.parts) if part.kind not in WEIGHTS_UNCHANGED]
        last = trains[-1] if trains else -1
        candidate: Candidate | None = None
        for index, part in enumerate(self.parts):
            part_ctx = ctx if index >= last else dataclasses.replace(
                ctx, log_curve=_prefixed(ctx.log_curve, part.name))
            candidate = (part.prepare(part_ctx) if candidate is None
                         else part.build_on(part_ctx, candidate))
        assert candidate is not None
        return candidate


def _prefixed(log_curve: Callable[[int, str, str, float], None],
              prefix: str) -> Callable[[int, str, str, float], None]:
    def log(step: int, split: str, name: str, value: float) -> None:
        log_curve(step, f"{prefix}/{split}", name, value)
    return log


def make_approach(
    name: str, registry: Registry, configure: Callable[[type[Approach]], Any]
) -> Approach:
    """The approach (or composition) called ``name``; ``configure(cls)`` builds its config."""
    check_composition(name, registry)
    parts = [cls(configure(cls)) for cls in map(registry.get, split_name(name))]
    inner = parts[0].default_inner()
    if inner:  # ``distill`` alone is ``<its teacher>+distill``, still called ``distill``
        full = SEPARATOR.join([inner, name])
        try:
            check_composition(full, registry)
        except (KeyError, ValueError) as error:
            raise ValueError(f"{parts[0].name} prepares {inner!r} first: {error}") from None
        parts = [cls(configure(cls)) for cls in map(registry.get, split_name(inner))] + parts
    for index, part in enumerate(parts[1:], start=1):
        part.follow(parts[:index])
    return parts[0] if len(parts) == 1 else ComposedApproach(parts, name=name)
