"""The measured pitfalls of the candidate the decision rule picks, named in its sentence.

The rule (``reports.decision``) picks on the headline metric and the kind of adaptation; what
adapting cost the model elsewhere is in the aspects table, not in the sentence a user reads.
A candidate can be good enough and cheapest while it forgets, so the sentence names, for the
chosen candidate, each finding its run recorded, with its number and 95% CI:

- forgetting, read as the table reads it (``harness.measure.forgetting.read_forgetting``;
  Biderman et al., 2024, "LoRA Learns Less and Forgets Less"): general probes in chat or raw
  mode (``forgetting_delta``, ``forgetting_delta_raw``) whose paired CI lies wholly below 0,
  a perplexity rise on held-out prose (``nll_per_token_delta``, CI wholly above 0), and
  prompt interference (``interference_delta``, CI wholly below 0: its prompts make unrelated
  questions worse);
- overfitting: the training curves' verdict ``overfit`` (``overfit_verdict``; the rule is
  ``harness.measure.overfitting.VERDICT_RULE``, after Prechelt, 1998).

Then the cheapest good-enough alternative (the rule's own order) measured on the same metrics
and free of findings, or that there is none; and the requirement that excludes the finding.
``--min-forgetting`` (``reports.requirements``; "min forgetting_delta" on the dashboard) reads
the chat probes' ``forgetting_delta`` only, so for a finding on the raw probes, perplexity,
interference or the curves the sentence says that no requirement excludes it, rather than
name an option that would not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from harness.measure.forgetting import (
    INTERFERENCE,
    PROBES,
    TEXT,
    VERDICT_METRICS,
    Cell,
    read_forgetting,
)
from harness.measure.overfitting import VERDICT_CODES
from reports.analysis import fmt
from reports.decision_table import LABELS
from reports.requirements import FORGETTING
from reports.rule import Estimated

OVERFIT = "overfit_verdict"
OPTION = "--min-forgetting"
"""The requirement's flag (``python -m reports.export``); the dashboard's input is named
after the metric it reads, "min forgetting_delta"."""
_WHAT = {PROBES[0][0]: "forgetting on chat probes", PROBES[1][0]: "forgetting on raw probes",
         TEXT[0]: "a perplexity rise", INTERFERENCE[0]: "prompt interference",
         OVERFIT: "overfitting"}
"""Each finding's name in the sentence on requirements."""


class Measured(Estimated, Protocol):
    """What the pitfalls read of a candidate (``reports.decision.Candidate`` has it)."""

    @property
    def kind(self) -> str: ...
    @property
    def measures(self) -> Mapping[str, float]: ...
    @property
    def cells(self) -> Mapping[str, Cell]: ...


@dataclass(frozen=True)
class Pitfall:
    """One finding of a candidate: the metric that shows it and the words that say it."""

    metric: str
    text: str
    """e.g. ``forgets on raw probes -0.071 [-0.108, -0.037]``."""


def _signed(value: float, low: float | None, high: float | None) -> str:
    """``+0.058 [+0.020, +0.090]``, as ``harness.measure.forgetting`` writes its findings."""
    ci = "" if low is None or high is None else f" [{low:+.3f}, {high:+.3f}]"
    return f"{value:+.3f}{ci}"


def _cells(candidate: Measured) -> dict[str, Cell]:
    """Every recorded metric with its CI (``None`` ends where only the value is known)."""
    return {**{name: (value, None, None) for name, value in candidate.measures.items()},
            **candidate.cells}


def _overfit(cells: Mapping[str, Cell]) -> Pitfall | None:
    if OVERFIT not in cells or cells[OVERFIT][0] != VERDICT_CODES["overfit"]:
        return None
    final, best = cells.get("final_validation_loss"), cells.get("best_validation_loss")
    curve = (f"validation loss {final[0]:.3g} at the end, {best[0]:.3g} at its lowest"
             if final and best else "overfit_verdict")
    return Pitfall(OVERFIT, f"overfits by its training curves ({curve})")


def pitfalls(candidate: Measured) -> list[Pitfall]:
    """The candidate's findings (module docstring), forgetting first; empty when none."""
    cells = _cells(candidate)
    reading = read_forgetting({n: cells[n] for n in VERDICT_METRICS if n in cells})
    found = [Pitfall(f.metric, f"raises {f.text}" if f.metric == TEXT[0] else
                     f"forgets on {f.text}") for f in reading.losses]
    if reading.interference is not None:
        found.append(Pitfall(reading.interference.metric,
                             f"its prompts interfere with unrelated questions "
                             f"({reading.interference.text})"))
    overfit = _overfit(cells)
    return found if overfit is None else [*found, overfit]


def _alternative(found: Sequence[Pitfall], others: Sequence[Measured], metric: str) -> str:
    """The first of ``others`` measured on the same metrics and free of findings."""
    needed = {p.metric for p in found}
    for other in others:
        if needed <= set(_cells(other)) and not pitfalls(other):
            return (f"{other.name} ({LABELS.get(other.kind, other.kind)}, {metric} "
                    f"{fmt(other.value, other.low, other.high)}) is also good enough and "
                    f"shows none of these.")
    why = []
    for other in others:
        own = pitfalls(other)
        missing = sorted(needed - set(_cells(other)))
        why.append(f"{other.name} " + ("; ".join(p.text for p in own) if own else
                                        f"not measured on {', '.join(missing)}"))
    return f"No other good-enough candidate is free of them: {'; '.join(why)}." if why else ""


def _requirement(found: Sequence[Pitfall], candidate: Measured) -> str:
    """The option that excludes the findings, or that none does."""
    out = []
    if any(p.metric == FORGETTING for p in found):
        out.append(f"{OPTION} 0 (the dashboard's \"min {FORGETTING}\") would exclude it.")
    rest = [_WHAT[p.metric] for p in found if p.metric != FORGETTING]
    if rest:
        chat = _cells(candidate).get(FORGETTING)
        shown = f" ({_signed(*chat)} for {candidate.name})" if chat else ""
        out.append(f"No requirement excludes {' or '.join(dict.fromkeys(rest))}: {OPTION} "
                   f"reads only {FORGETTING}, the chat probes{shown}.")
    return " ".join(out)


def pitfall_text(choice: Measured, others: Sequence[Measured], metric: str) -> str:
    """What the recommendation says of ``choice``'s pitfalls: the findings with their numbers,
    the first of ``others`` (the other good-enough candidates, cheapest first) free of them,
    and the requirement that would exclude them; ``""`` when the choice has none."""
    found = pitfalls(choice)
    if not found:
        return ""
    head = f"Measured pitfalls of {choice.name}: {'; '.join(p.text for p in found)}."
    parts = (head, _alternative(found, others, metric), _requirement(found, choice))
    return " ".join(p for p in parts if p)
