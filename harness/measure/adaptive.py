"""Adaptive evaluation: score items in a seeded random order and stop when the question is settled.

A suite scores a candidate's eval items chunk by chunk (about ten chunks of 10 to 50 items),
in an order drawn from the run's seed: the same order for every candidate of a seed, so
candidates share their first items and are compared on them, paired. After each chunk it
updates anytime-valid confidence sequences (:mod:`harness.measure.sequential`; Waudby-Smith &
Ramdas, 2024): one for the candidate's mean, one for its paired difference from the best
candidate scored before it in the session. A confidence sequence holds at every chunk at
once, so stopping when it looks settled keeps its coverage, where a bootstrap CI re-checked
after every chunk does not (tests/test_sequential.py).

The candidate stops (:class:`Outcome`'s ``stopped``):

- ``worse``: the paired sequence lies entirely below ``-margin`` (clearly worse than the best);
- ``equivalent``: it lies entirely within ``[-margin, +margin]`` (as good as the best, within
  the margin the decision rule grants);
- ``precise``: the candidate's own sequence is at most ``ci_width`` wide;
- ``all``: every item was scored without any of the above;
- ``budget``: ``--time-budget`` left it no more time (:mod:`harness.runner.time_budget`).

The target is the task's accuracy, of which the eval set is a sample (as for the bootstrap CIs
of a full evaluation), so the sequences are the i.i.d. ones, not those for the finite eval set.
The stored interval is the sequence's at the stopping time: wider than a bootstrap CI on as
many items, the price of looking after every chunk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.measure.metrics import Estimate
from harness.measure.sequential import difference_sequence, mean_sequence

DEFAULT_CI_WIDTH = 0.10
"""Width of the 95% sequence at which a candidate's estimate is precise enough."""
DEFAULT_MARGIN = 0.02
"""Accuracy (absolute) a cheaper candidate may lose against the best and still be chosen: the
non-inferiority margin of the decision rule (``reports.rule``, which reads it from here), and
the margin an adaptive candidate's paired sequence is checked against."""
DEFAULT_CHUNK = 50
"""Most items scored between two looks."""
LOOKS = 10
"""Looks over a whole eval set, at least: chunks are a tenth of it, 10 to ``chunk`` items."""
MIN_CHUNK = 10
REASONS = {
    "worse": "clearly worse than {versus}: the paired sequence lies below -{margin:g}",
    "equivalent": "within ±{margin:g} of {versus}: the paired sequence lies inside the margin",
    "precise": "precise enough: the 95% sequence is at most {width:g} wide",
    "all": "every item scored",
    "budget": "the time budget's share for it was spent",
}
"""Why a candidate stopped, as the report words it."""

Row = dict[str, Any]


@dataclass(frozen=True)
class AdaptivePlan:
    """When to stop (``--adaptive on``, ``--ci-width``)."""

    ci_width: float = DEFAULT_CI_WIDTH
    margin: float = DEFAULT_MARGIN
    alpha: float = 0.05
    chunk: int = DEFAULT_CHUNK

    def __post_init__(self) -> None:
        if not 0 < self.ci_width <= 1:
            raise ValueError(f"--ci-width is the width of a 95% interval on a [0, 1] score: "
                             f"give a number in (0, 1], got {self.ci_width:g}")
        if not 0 <= self.margin < 1:
            raise ValueError(f"margin must be in [0, 1), got {self.margin:g}")
        if self.chunk < 1:
            raise ValueError(f"chunk must be at least 1 item, got {self.chunk}")

    def chunk_for(self, n: int) -> int:
        """Items a chunk of an ``n``-item eval set holds: about :data:`LOOKS` looks over it,
        at least :data:`MIN_CHUNK` and at most ``chunk`` items a look."""
        return max(min(MIN_CHUNK, self.chunk), min(self.chunk, -(-n // LOOKS)))


@dataclass(frozen=True)
class Reference:
    """The best candidate scored before in the session: its values by item id."""

    name: str
    values: Mapping[str, float]

    @property
    def mean(self) -> float:
        return sum(self.values.values()) / len(self.values)


@dataclass(frozen=True)
class Outcome:
    """How an adaptive evaluation ended."""

    estimate: Estimate
    """The candidate's mean with its confidence sequence at the stopping time."""
    n_available: int
    stopped: str
    """A key of :data:`REASONS`."""
    versus: str | None = None
    difference: Estimate | None = None
    """The paired difference (candidate minus ``versus``) on the shared items, if any."""

    @property
    def n_scored(self) -> int:
        return self.estimate.n

    def extra(self, plan: AdaptivePlan) -> dict[str, Any]:
        """What the store keeps with the metric (``metrics.extra_json``)."""
        out: dict[str, Any] = {
            "adaptive": True, "interval": "confidence sequence", "n_scored": self.n_scored,
            "n_available": self.n_available, "stopped": self.stopped,
            "stop_reason": self.reason(plan)}
        if self.versus is not None and self.difference is not None:
            d = self.difference
            out.update(versus=self.versus, difference=d.value, difference_low=d.low,
                       difference_high=d.high, shared=d.n)
        return out

    def reason(self, plan: AdaptivePlan) -> str:
        return REASONS[self.stopped].format(versus=self.versus, margin=plan.margin,
                                            width=plan.ci_width)


def item_order(items: Sequence[Any], seed: int, key: Callable[[Any], str]) -> list[Any]:
    """``items`` in the seed's random order: sorted by a hash of the seed and each item's id,
    so every candidate of a seed meets the items in the same order, whatever else the set
    holds."""
    def rank(item: Any) -> str:
        return hashlib.sha256(f"{seed}\0{key(item)}".encode()).hexdigest()
    return sorted(items, key=rank)


def settled(estimate: Estimate, difference: Estimate | None, plan: AdaptivePlan) -> str | None:
    """The reason to stop now (a key of :data:`REASONS`), or ``None`` to go on."""
    if difference is not None:
        if difference.high < -plan.margin:
            return "worse"
        if difference.low >= -plan.margin and difference.high <= plan.margin:
            return "equivalent"
    if estimate.high - estimate.low <= plan.ci_width:
        return "precise"
    return None


def evaluate_adaptively(
    items: Sequence[Any], score: Callable[[list[Any]], list[Row]], *, seed: int,
    plan: AdaptivePlan, value_of: Callable[[Row], float], item_id: Callable[[Any], str],
    reference: Reference | None = None, out_of_time: Callable[[], bool] | None = None,
) -> tuple[list[Row], Outcome]:
    """Score ``items`` chunk by chunk in the seed's order until settled (module docstring).

    ``score`` maps a list of items to their rows (in order); ``value_of`` reads a row's value
    in [0, 1]; ``out_of_time``, asked after each chunk, stops the evaluation (``budget``) when
    it answers true. Returns the rows scored, in scoring order, and the :class:`Outcome`."""
    if not items:
        raise ValueError("cannot evaluate a candidate on zero items")
    rows: list[Row] = []
    values: list[float] = []
    ids: list[str] = []
    for chunk in looks(items, seed, plan, item_id):
        scored = score(chunk)
        rows.extend(scored)
        values.extend(value_of(row) for row in scored)
        ids.extend(item_id(item) for item in chunk)
        estimate = mean_sequence(values, alpha=plan.alpha)
        difference = paired_difference(values, ids, reference, plan)
        reason = settled(estimate, difference, plan)
        if reason is None and len(rows) < len(items) and out_of_time is not None and (
                out_of_time()):
            reason = "budget"
        if reason is not None or len(rows) == len(items):
            return rows, Outcome(estimate, len(items), reason or "all",
                                 reference.name if reference else None, difference)
    raise AssertionError("unreachable: the last chunk returns")


def looks(items: Sequence[Any], seed: int, plan: AdaptivePlan,
          item_id: Callable[[Any], str]) -> Iterator[list[Any]]:
    """``items`` in the seed's order (:func:`item_order`), one chunk per look
    (:meth:`AdaptivePlan.chunk_for`)."""
    ordered = item_order(items, seed, item_id)
    size = plan.chunk_for(len(ordered))
    for start in range(0, len(ordered), size):
        yield ordered[start:start + size]


def paired_difference(values: Sequence[float], ids: Sequence[str],
                      reference: Reference | None, plan: AdaptivePlan) -> Estimate | None:
    """The confidence sequence of ``values`` (of the items ``ids``) minus ``reference``'s, on
    the items both scored; ``None`` without a reference or a shared item."""
    if reference is None:
        return None
    shared = [(v, reference.values[i]) for v, i in zip(values, ids, strict=True)
              if i in reference.values]
    if not shared:
        return None
    mine, theirs = zip(*shared, strict=True)
    return difference_sequence(mine, theirs, alpha=plan.alpha)


class References:
    """Each candidate's values by item id, per (scoring kind, seed), kept for the candidates
    after it in the session: the best of them is the one a new candidate is paired with."""

    def __init__(self) -> None:
        self._kept: dict[tuple[str, int], dict[str, Reference]] = {}

    def add(self, kind: str, seed: int, name: str, values: Mapping[str, float]) -> None:
        if values:
            self._kept.setdefault((kind, seed), {})[name] = Reference(name, dict(values))

    def names(self, kind: str, seed: int) -> list[str]:
        return list(self._kept.get((kind, seed), {}))

    def get(self, kind: str, seed: int, name: str) -> Reference:
        return self._kept[(kind, seed)][name]

    def best(self, kind: str, seed: int, *, besides: str = "") -> Reference | None:
        """The reference with the highest mean over the items it scored (``None``: none yet)."""
        kept = [r for name, r in self._kept.get((kind, seed), {}).items() if name != besides]
        return max(kept, key=lambda r: r.mean, default=None)


def chunks_in_time(items: Sequence[Any], seed: int, plan: AdaptivePlan,
                   out_of_time: Callable[[], bool] | None,
                   limit: int | None = None) -> Iterator[list[Any]]:
    """The looks over ``items`` (:func:`looks`), the first ``limit`` items of the seed's order
    at most, until ``out_of_time`` answers true after one: what a part that the time budget
    cuts short measures."""
    given = 0
    for chunk in looks(items, seed, plan, lambda item: item.id):
        chunk = chunk if limit is None else chunk[:limit - given]
        if not chunk:
            return
        yield chunk
        given += len(chunk)
        if out_of_time is not None and out_of_time():
            return


def score_until(items: Sequence[Any], score: Callable[[list[Any]], list[Row]], *, seed: int,
                plan: AdaptivePlan, out_of_time: Callable[[], bool] | None) -> list[Row]:
    """Every item's rows, or with ``out_of_time`` those of the chunks (in the seed's order)
    scored before it answered true: for a candidate that cannot stop on a sequence (several
    draws) but must stop for the time budget."""
    if out_of_time is None:
        return score(list(items))
    rows: list[Row] = []
    for chunk in chunks_in_time(items, seed, plan, out_of_time):
        rows.extend(score(chunk))
    return rows


def score_suite_items(
    items: Sequence[Any], score: Callable[[list[Any]], list[Row]], *, kind: str, seed: int,
    name: str, value_of: Callable[[Row], float], plan: AdaptivePlan | None,
    references: References, cache: dict[tuple[str, str], Row] | None = None,
    full: bool = False, out_of_time: Callable[[], bool] | None = None,
) -> tuple[list[Row], Outcome | None]:
    """A suite's rows for ``items``: all of them (``plan`` ``None``: ``--adaptive off``; or
    ``full``), else as many as :func:`evaluate_adaptively` needs against the best earlier
    candidate (or has time for: ``out_of_time``). Rows already in ``cache`` (a run's
    ``scored``) are not scored again. With a plan, the candidate's values are kept in
    ``references`` for the candidates after it."""
    from harness.measure.evaluate import scored_once

    def score_cached(chunk: list[Any]) -> list[Row]:
        return scored_once(cache, kind, chunk, score)

    if plan is None:
        return score_cached(list(items)), None
    if full:
        rows, outcome = score_until(items, score_cached, seed=seed, plan=plan,
                                    out_of_time=out_of_time), None
    else:
        rows, outcome = evaluate_adaptively(
            items, score_cached, seed=seed, plan=plan, value_of=value_of,
            item_id=lambda item: item.id, reference=references.best(kind, seed, besides=name),
            out_of_time=out_of_time)
    references.add(kind, seed, name, {row["item_id"]: value_of(row) for row in rows})
    return rows, outcome
