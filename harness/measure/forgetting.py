"""Reading the forgetting measurements together, so that no single number hides damage.

The forgetting suite records several measurements of one question ("what did adapting cost
the model's general ability?") and they can disagree: a fine-tune may gain on multiple-choice
probes while its perplexity on held-out prose rises. :func:`read_forgetting` states which of
them show a significant loss, and never reports "no forgetting" while one of them does:

- ``forgetting_delta`` (chat-mode probes, the weights without the candidate's prompt
  rewriting) and ``forgetting_delta_raw`` (raw-text probes, as lm-eval's HFLM and Biderman et
  al., 2024, score them): a loss when the paired CI lies below zero;
- ``nll_per_token_delta`` (held-out general text): a loss when its paired CI lies above
  zero, i.e. perplexity rose;
- ``interference_delta`` (the probes asked through the candidate's prompt rewriting, e.g.
  few-shot demonstrations or retrieved passages): a loss there is prompt interference, not
  forgetting, and is named so.

Pure functions of recorded numbers: the terminal summary, the dashboard and the decision
report call the same code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

Cell = tuple[float, float | None, float | None]
"""``(value, ci_low, ci_high)`` of one recorded metric."""

PROBES = (("forgetting_delta", "chat probes"), ("forgetting_delta_raw", "raw probes"))
TEXT = ("nll_per_token_delta", "perplexity")
INTERFERENCE = ("interference_delta", "probes through its prompts")
VERDICT_METRICS = (*(n for n, _ in PROBES), TEXT[0], INTERFERENCE[0])
"""The metrics :func:`read_forgetting` reads."""


@dataclass(frozen=True)
class Finding:
    metric: str
    label: str
    value: float
    low: float | None
    high: float | None

    @property
    def text(self) -> str:
        unit = " nats/token" if self.metric == TEXT[0] else ""
        ci = "" if self.low is None or self.high is None else \
            f" [{self.low:+.3f}, {self.high:+.3f}]"
        return f"{self.label} {self.value:+.3f}{unit}{ci}"


def _lower(cell: Cell) -> bool:
    """The CI lies below zero (a significant loss of accuracy)."""
    return cell[2] is not None and cell[2] < 0


def _higher(cell: Cell) -> bool:
    """The CI lies above zero (a significant rise of negative log-likelihood)."""
    return cell[1] is not None and cell[1] > 0


@dataclass(frozen=True)
class ForgettingReading:
    """Which forgetting measurements show a significant loss."""

    losses: tuple[Finding, ...]
    """Forgetting shown by the weights: probe accuracy fell or perplexity rose."""
    interference: Finding | None
    """Probe accuracy fell only when asked through the candidate's own prompts."""
    others: tuple[Finding, ...]
    """The measurements without a significant loss."""

    @property
    def forgets(self) -> bool:
        return bool(self.losses)

    @property
    def measured(self) -> bool:
        return bool(self.losses or self.interference or self.others)

    @property
    def sentence(self) -> str:
        if not self.measured:
            return "not measured"
        parts = []
        if self.losses:
            parts.append("forgets on " + ", ".join(f.text for f in self.losses))
        if self.interference:
            parts.append("prompt interference: " + self.interference.text)
        if not parts:
            parts.append("no significant forgetting")
        if self.others:
            parts.append(("while " if self.losses else "") + "; ".join(f.text for f in self.others))
        return "; ".join(parts)


def read_forgetting(cells: Mapping[str, Cell]) -> ForgettingReading:
    """Read one candidate's forgetting metrics (``name -> (value, low, high)``)."""
    losses, others = [], []
    interference = None
    for name, label in PROBES:
        if name in cells:
            found = Finding(name, label, *cells[name])
            (losses if _lower(cells[name]) else others).append(found)
    if TEXT[0] in cells:
        found = Finding(TEXT[0], TEXT[1], *cells[TEXT[0]])
        (losses if _higher(cells[TEXT[0]]) else others).append(found)
    if INTERFERENCE[0] in cells:
        found = Finding(INTERFERENCE[0], INTERFERENCE[1], *cells[INTERFERENCE[0]])
        if _lower(cells[INTERFERENCE[0]]):
            interference = found
        else:
            others.append(found)
    return ForgettingReading(tuple(losses), interference, tuple(others))
