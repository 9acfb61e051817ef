"""Requirements that exclude candidates before the decision rule compares them.

A deployment constraint is not a trade-off: a candidate too slow, too costly to train or to
serve, that forgets too much general ability, or that cannot take new facts without
retraining is out, however accurate. The decision rule (``reports.decision``) is applied to
the candidates left. Each requirement reads metrics the suites record on every run; a
candidate lacking one is excluded as "not measured" with the suite that measures it, never
silently kept. Every exclusion names the requirement and the measured number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

LATENCY, SERVING, TRAINING = "latency_p95_ms", "cost_per_1k_requests", "train_cost"
READS, NEW_FACTS, OLD_FACTS = "reads_documents", "new_facts_after", "old_facts_after"
FORGETTING = "forgetting_delta"
SUITES = {LATENCY: "suites/test_latency.py", SERVING: "suites/test_latency.py",
          TRAINING: "suites/test_latency.py", READS: "suites/test_knowledge_update.py",
          FORGETTING: "suites/test_forgetting.py"}
"""The suite that records each metric a requirement reads."""


def number(value: float) -> str:
    """``812``, ``1,240``, ``0.1``, ``-0.02``: three significant digits, thousands grouped."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def not_measured(metric: str) -> str:
    """The reason a candidate lacking ``metric`` is excluded."""
    return f"{metric} not measured (run {SUITES.get(metric, 'the suite that records it')})"


def _check(value: object, label: str, *, change: bool = False) -> None:
    """Refuse a limit that is not a finite number, a negative maximum, or a minimum accuracy
    change outside [-1, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise ValueError(f"{label} must be a finite number, got {value!r}")
    if not change and value < 0:
        raise ValueError(f"{label} must be >= 0, got {value:g}")
    if change and not -1 <= value <= 1:
        raise ValueError(f"{label} is a change in accuracy: it must be in [-1, 1], "
                         f"got {value:g}")


@dataclass(frozen=True)
class Requirements:
    """What a candidate must meet to be considered at all (``None``/``False``: no
    requirement). Bad values raise ``ValueError`` naming the field."""

    max_p95_ms: float | None = None
    """Largest acceptable 95th-percentile batch-1 request latency (``latency_p95_ms``)."""
    max_cost_per_1k: float | None = None
    """Largest acceptable serving cost of 1,000 requests (``cost_per_1k_requests``)."""
    max_train_cost: float | None = None
    """Largest acceptable training cost (``train_cost``: training time x price per hour)."""
    updatable_knowledge: bool = False
    """Knowledge must be updatable without retraining: the knowledge-update suite found the
    candidate answers from documents (``reads_documents`` = 1) and, where recorded, that it
    answers with more new facts than old ones after the documents changed."""
    min_forgetting: float | None = None
    """Smallest acceptable ``forgetting_delta`` (paired accuracy change on general probes
    vs the base model; -0.02 allows losing two points)."""

    def __post_init__(self) -> None:
        for name, label in (("max_p95_ms", "maximum p95 latency (ms)"),
                            ("max_cost_per_1k", "maximum cost per 1k requests"),
                            ("max_train_cost", "maximum training cost")):
            if getattr(self, name) is not None:
                _check(getattr(self, name), label)
        if self.min_forgetting is not None:
            _check(self.min_forgetting, "minimum forgetting_delta", change=True)

    @property
    def any(self) -> bool:
        """Whether at least one requirement is set."""
        return bool(self.describe())

    def describe(self) -> list[str]:
        """One text per set requirement, e.g. ``latency_p95_ms <= 500 ms``."""
        out = []
        if self.max_p95_ms is not None:
            out.append(f"{LATENCY} <= {number(self.max_p95_ms)} ms")
        if self.max_cost_per_1k is not None:
            out.append(f"{SERVING} <= {number(self.max_cost_per_1k)}")
        if self.max_train_cost is not None:
            out.append(f"{TRAINING} <= {number(self.max_train_cost)}")
        if self.updatable_knowledge:
            out.append(f"knowledge updatable without retraining ({READS} = 1 and "
                       f"{NEW_FACTS} > {OLD_FACTS} where recorded)")
        if self.min_forgetting is not None:
            out.append(f"{FORGETTING} >= {number(self.min_forgetting)}")
        return out

    def failures(self, measures: Mapping[str, float]) -> list[str]:
        """Why a candidate with the recorded ``measures`` (metric name -> value) fails the
        requirements; empty when it meets them all."""
        checks = [_at_most(measures, LATENCY, self.max_p95_ms, " ms"),
                  _at_most(measures, SERVING, self.max_cost_per_1k, ""),
                  _at_most(measures, TRAINING, self.max_train_cost, ""),
                  _updatable(measures) if self.updatable_knowledge else None,
                  _at_least(measures, FORGETTING, self.min_forgetting)]
        return [reason for reason in checks if reason]


def _at_most(measures: Mapping[str, float], metric: str, limit: float | None,
             unit: str) -> str | None:
    if limit is None:
        return None
    if metric not in measures:
        return not_measured(metric)
    value = measures[metric]
    return f"{metric} {number(value)}{unit} > {number(limit)}{unit}" if value > limit else None


def _at_least(measures: Mapping[str, float], metric: str, limit: float | None) -> str | None:
    if limit is None:
        return None
    if metric not in measures:
        return not_measured(metric)
    value = measures[metric]
    return f"{metric} {number(value)} < {number(limit)}" if value < limit else None


def _updatable(measures: Mapping[str, float]) -> str | None:
    """Follows the knowledge-update suite: documents swapped without retraining, and the
    answers moved to the new facts (cf. Ovadia et al., 2024)."""
    if READS not in measures:
        return not_measured(READS)
    if measures[READS] != 1:
        return (f"{READS} {number(measures[READS])}: knowledge cannot be updated without "
                "retraining")
    new, old = measures.get(NEW_FACTS), measures.get(OLD_FACTS)
    if new is not None and old is not None and not new > old:
        return (f"{NEW_FACTS} {number(new)} <= {OLD_FACTS} {number(old)}: still answers with "
                "the old facts after the documents changed")
    return None


@dataclass(frozen=True)
class Exclusion:
    """A candidate the requirements left out, and every requirement it failed."""

    name: str
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.name} excluded: {'; '.join(self.reasons)}"
